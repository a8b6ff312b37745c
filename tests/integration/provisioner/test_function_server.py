"""A composition function written with Crossplane's Python SDK, called over RunFunction gRPC.

The ``size-policy`` function (``functions/size_policy.py``) runs as its own process with the SDK's
interpreter (the SDK pins gRPC and protobuf versions of its own, so it lives in a venv of its own,
cached under ``~/.cache/fleetplane``). Cases: ``fleetplane render`` runs a namespaced composite's
pipeline (the template, then the server) and prints what the server added, its results on stderr;
a fatal result fails the render naming the step; the pipeline run by the provisioner's code gets
the server's resources, results and conditions (Argo CD's released manifests among the resources);
the same over mutual TLS from the platform CA.
"""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import Iterator

import pytest
import yaml
from typer.testing import CliRunner

from fleetplane.cli import app
from localinfra import build
from provisioner import catalog, pipeline, render
from provisioner.functions import installed, wire
from tests import function_sdk
from tests.unit.provisioner import builders
from trust import authority
from trust.identity import Identity

pytestmark = pytest.mark.integration

runner = CliRunner()
# Argo CD's released manifests, as the build caches them: their CRDs are nested deeper than
# protobuf decoders read, which the wire must handle.
ARGOCD_INSTALL = build.argocd_manifests_dir() / "install.yaml"


@pytest.fixture(scope="module")
def size_policy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of a plaintext size-policy server on loopback."""
    server, address = function_sdk.serve(tmp_path_factory.mktemp("fn") / "size-policy.log")
    yield address
    function_sdk.stop(server)


POLICY_STEP = {"step": "policy", "functionRef": {"name": "size-policy"}, "input": {"maxNodeCount": 3}}


def _files(tmp_path: pathlib.Path, node_count: int) -> list[str]:
    folder = tmp_path / "compositions" / "team-cluster"
    folder.mkdir(parents=True)
    (tmp_path / "compositions" / "worker-cluster").mkdir()
    (tmp_path / "compositions" / "worker-cluster" / "template.yaml.j2").write_text(builders.template())
    composition = folder / "composition.yaml"
    composition.write_text(yaml.safe_dump(builders.pipeline_composition(POLICY_STEP)))
    definition = tmp_path / "definition.yaml"
    definition.write_text(yaml.safe_dump(builders.namespaced_definition()))
    composite = tmp_path / "dev.yaml"
    composite.write_text(yaml.safe_dump(builders.team_cluster(nodeCount=node_count)))
    return [
        str(composite),
        "--definition",
        str(definition),
        "--composition",
        str(composition),
        "--argocd-install",
        str(builders.ARGOCD_INSTALL),
    ]


def test_render_calls_the_function_server_and_prints_what_it_composed(
    size_policy: str, tmp_path: pathlib.Path
) -> None:
    result = runner.invoke(
        app, ["render", *_files(tmp_path, 1), "--function", f"size-policy={size_policy}", "-o", "json"]
    )
    assert result.exit_code == 0, result.output
    objects = yaml.safe_load(result.stdout)["items"]
    assert objects[0]["kind"] == "ClusterConfig"
    # the server's annotations are the provisioner's own: they do not reach the objects
    assert "annotations" not in objects[0]["metadata"]
    report = objects[-1]
    assert report["kind"] == "ConfigMap" and report["metadata"] == {
        "name": "policy-report",
        "namespace": "default",
    }
    assert report["data"] == {"composite": "dev", "nodeCount": "1", "limit": "3"}
    assert "Normal: step policy (size-policy): nodeCount 1 is within the limit of 3" in result.stderr


def test_a_warning_is_printed_and_a_fatal_result_fails_the_render(
    size_policy: str, tmp_path: pathlib.Path
) -> None:
    at_limit = runner.invoke(
        app, ["render", *_files(tmp_path / "a", 3), "--function", f"size-policy={size_policy}"]
    )
    assert at_limit.exit_code == 0, at_limit.output
    assert "Warning: step policy (size-policy): nodeCount 3 is at the limit of 3" in at_limit.stderr

    above = runner.invoke(
        app, ["render", *_files(tmp_path / "b", 5), "--function", f"size-policy={size_policy}"]
    )
    assert above.exit_code == 1
    assert (
        "pipeline step 'policy' (function 'size-policy'): nodeCount 5 is above the limit of 3" in above.stderr
    )
    assert above.stdout == ""


def test_render_without_the_server_names_the_missing_function(tmp_path: pathlib.Path) -> None:
    result = runner.invoke(app, ["render", *_files(tmp_path, 1)])
    assert result.exit_code == 1
    assert "spec.pipeline[1].functionRef.name: function 'size-policy' is not installed" in result.stderr


def _run(server: wire.FunctionServer, install: pathlib.Path = builders.ARGOCD_INSTALL) -> pipeline.Outcome:
    composite = builders.defaulted_composite(builders.team_cluster(nodeCount=2))
    defaults = builders.composition()["spec"]["defaults"]
    platform = builders.platform(catalog.load_documents(install))
    values = render.composite_values(composite, None, defaults, platform)
    spec = pipeline.freeze(builders.pipeline_composition(POLICY_STEP), builders.WORKER.parent)
    assert spec is not None

    async def go() -> pipeline.Outcome:
        try:
            return await pipeline.run(
                spec,
                installed.installed({"size-policy": server}),
                values=values,
                composite=composite,
                observed={},
            )
        finally:
            await server.close()

    return asyncio.run(go())


def test_the_pipeline_gets_the_servers_results_and_conditions(size_policy: str) -> None:
    outcome = _run(wire.FunctionServer("size-policy", size_policy), ARGOCD_INSTALL)
    assert any(r.object["kind"] == "CustomResourceDefinition" for r in outcome.resources)
    assert outcome.resources[-1].name == "policy-report" and outcome.resources[-1].target == "workload"
    assert pipeline.conditions(outcome) == [
        {
            "type": "Pipeline",
            "status": "True",
            "reason": "Normal",
            "message": "policy: nodeCount 2 is within the limit of 3",
        },
        {"type": "SizeChecked", "status": "True", "reason": "WithinLimit", "message": "2/3"},
    ]


def test_a_server_that_is_not_there_is_named() -> None:
    with pytest.raises(Exception, match=r"the function server at 127\.0\.0\.1:1 answered UNAVAILABLE"):
        _run(wire.FunctionServer("size-policy", "127.0.0.1:1", timeout=5))


def test_the_server_over_mutual_tls(tmp_path: pathlib.Path) -> None:
    ca = authority.CertificateAuthority.create()
    server_dir, client_dir = tmp_path / "server", tmp_path / "client"
    server_dir.mkdir()
    client_dir.mkdir()
    ca.issue(Identity.service("size-policy"), hosts=("127.0.0.1",), server=True, client=False).write(
        server_dir, "tls", ca.cert_pem
    )
    ca.issue(Identity.service("fleetplane-provisioner")).write(client_dir, "tls", ca.cert_pem)
    server, address = function_sdk.serve(tmp_path / "size-policy.log", "--tls-certs-dir", str(server_dir))
    try:
        outcome = _run(wire.FunctionServer("size-policy", address, tls=wire.Tls(client_dir)))
        assert outcome.results[0].result.message == "nodeCount 2 is within the limit of 3"
        # without the client certificate the server refuses the call
        with pytest.raises(Exception, match="answered UNAVAILABLE"):
            _run(wire.FunctionServer("size-policy", address, timeout=5))
    finally:
        function_sdk.stop(server)
