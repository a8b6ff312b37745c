"""``fleetplane render``, as a user runs it.

Cases: a claim renders to a YAML stream of the composed resources, each under a `# <index> <target>
<name>` comment, from the shipped definition and composition; -o wide lists them, -o json prints
them as a v1 List; a claim missing apps.repoURL prints
the field and exits 1; an unknown kind, a missing Argo CD install, a template error (through
--composition with an inline template) and an unknown revision kind print `error:` and exit 1.
"""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from fleetplane.cli import app

from . import builders

runner = CliRunner()


def write(tmp_path: pathlib.Path, name: str, obj: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(obj))
    return str(path)


def run(*args: str) -> Any:
    return runner.invoke(app, ["render", *args, "--argocd-install", str(builders.ARGOCD_INSTALL)])


def test_render_prints_the_composed_resources(tmp_path: pathlib.Path) -> None:
    result = run(write(tmp_path, "claim.yaml", builders.claim()), "--kafka", "10.0.0.1:9092")
    assert result.exit_code == 0, result.output
    comments = [line for line in result.output.splitlines() if line.startswith("# ") and line[2].isdigit()]
    assert comments[:3] == [
        "# 0 provider cluster",
        "# 1 workload argocd-namespace",
        "# 2 identity argocd-redis-certificate",
    ]
    assert comments[-1] == "# 29 hub inventory"
    objects = [d for d in yaml.safe_load_all(result.output) if d]
    assert len(objects) == 30
    assert objects[0]["kind"] == "ClusterConfig" and objects[0]["spec"]["provider"] == "local"
    agent = next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "maestro-agent")
    command = agent["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[command.index("--kafka") + 1] == "10.0.0.1:9092"
    app_source = next(o for o in objects if o["kind"] == "Application")["spec"]["source"]
    assert app_source == {"repoURL": "file:///srv/apps", "path": "apps", "targetRevision": "HEAD"}


def test_render_refuses_a_claim_without_repo_url(tmp_path: pathlib.Path) -> None:
    claim = builders.claim(apps={"path": "apps"})
    result = run(write(tmp_path, "claim.yaml", claim))
    assert result.exit_code == 1
    assert "error: ClusterClaim 'team-a'" in result.output
    assert "spec.parameters.apps.repoURL: is required but missing" in result.output


def inline_composition(template: str) -> dict[str, Any]:
    comp = builders.composition()
    comp["spec"]["template"] = {"inline": template}
    return comp


@pytest.mark.parametrize(
    ("case", "want"),
    [
        ("unknown kind", "error: no CompositeResourceDefinition in"),
        ("no argocd install", "run `fleetplane local build`"),
        ("template error", "error: Composition/worker-cluster:2: 'parameters' has no attribute 'nope'"),
        ("two objects", "holds 2 claims or composites — render one at a time"),
    ],
    ids=["unknown kind", "no argocd install", "template error", "two objects"],
)
def test_render_errors(tmp_path: pathlib.Path, case: str, want: str) -> None:
    claim = builders.claim()
    args: list[str] = []
    install = str(builders.ARGOCD_INSTALL)
    if case == "unknown kind":
        claim["kind"] = "DatabaseClaim"
    elif case == "no argocd install":
        install = str(tmp_path / "missing.yaml")
    elif case == "template error":
        args = [
            "--composition",
            write(tmp_path, "comp.yaml", inline_composition("---\n{{ parameters.nope }}\n")),
        ]
    claim_path = write(tmp_path, "claim.yaml", claim)
    if case == "two objects":
        pathlib.Path(claim_path).write_text(yaml.safe_dump_all([claim, claim]))
    result = runner.invoke(app, ["render", claim_path, *args, "--argocd-install", install])
    assert result.exit_code == 1
    assert want in result.output
    assert "Traceback" not in result.output


def test_render_lists_the_resources_or_prints_them_as_a_v1_list(tmp_path: pathlib.Path) -> None:
    claim = write(tmp_path, "claim.yaml", builders.claim())
    table = run(claim, "-o", "wide")
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split() == ["INDEX", "RESOURCE", "TARGET", "KIND", "NAMESPACE", "OBJECT", "WAIT", "READY"]
    assert lines[1].split()[:4] == ["0", "cluster", "provider", "ClusterConfig"]
    listed = run(claim, "-o", "json")
    printed = yaml.safe_load(listed.output)
    assert printed["kind"] == "List" and len(printed["items"]) == len(lines) - 1
