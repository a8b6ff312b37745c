"""The shipped examples work as their comments say.

Each claim renders with `fleetplane render` into the resources of its provider; each
ApplicationSet is generated and planned against a hub inventory holding the example claims'
clusters (dev-1: env=dev, prod-eu-1: env=prod) and yields the Applications its comment promises.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from controllers.propagation import generators, plan, rollout
from fleetplane.cli import app
from tests import examples
from tests.unit.controllers import builders
from tests.unit.provisioner import builders as provisioner_builders

runner = CliRunner()


def test_every_example_directory_has_examples() -> None:
    assert [p.name for p in examples.CLAIMS] == ["aws-cluster.yaml", "local-cluster.yaml"]
    assert {p.stem for p in examples.APPLICATION_SETS} == {
        "clusters", "list", "matrix", "merge", "cluster-decision-resource", "rolling-sync"
    }  # fmt: skip


@pytest.mark.parametrize("path", examples.CLAIMS, ids=lambda p: p.stem)
def test_a_claim_renders_for_its_provider(path: Path) -> None:
    (claim,) = examples.of_kind(path, "ClusterClaim")
    result = runner.invoke(
        app, ["render", str(path), "--argocd-install", str(provisioner_builders.ARGOCD_INSTALL)]
    )
    assert result.exit_code == 0, result.output
    rendered = [doc for doc in yaml.safe_load_all(result.output) if doc]
    config = rendered[0]
    assert config["kind"] == "ClusterConfig"
    assert config["spec"]["provider"] == claim["spec"]["parameters"]["provider"]
    inventory = next(d for d in rendered if d.get("kind") == "Secret" and "argocd.argoproj.io/secret-type" in
                     d["metadata"].get("labels", {}))  # fmt: skip
    for key, value in claim["spec"]["parameters"]["labels"].items():
        assert inventory["metadata"]["labels"][key] == value


FLEET = builders.fleet(
    ("dev-1", {"env": "dev", "region": "local"}), ("prod-eu-1", {"env": "prod", "region": "eu-west-1"})
)
PLACEMENT_DECISION: dict[str, Any] = {
    "apiVersion": "cluster.open-cluster-management.io/v1beta1",
    "kind": "PlacementDecision",
    "metadata": {
        "name": "guestbook-decision-1",
        "namespace": "argocd",
        "labels": {"cluster.open-cluster-management.io/placement": "guestbook"},
    },
    "status": {"decisions": [{"clusterName": "prod-eu-1", "reason": ""}]},
}

EXPECTED = {
    "clusters": {"dev-1": ["dev-1-guestbook"]},
    "list": {"dev-1": ["dev-1-helm-guestbook"], "prod-eu-1": ["prod-eu-1-helm-guestbook"]},
    "matrix": {"prod-eu-1": ["prod-eu-1-guestbook", "prod-eu-1-kustomize-guestbook"]},
    "merge": {"dev-1": ["dev-1-guestbook-pinned"], "prod-eu-1": ["prod-eu-1-guestbook-pinned"]},
    "cluster-decision-resource": {"prod-eu-1": ["prod-eu-1-guestbook-placed"]},
    "rolling-sync": {"dev-1": ["dev-1-guestbook-rolling"], "prod-eu-1": ["prod-eu-1-guestbook-rolling"]},
}


@pytest.mark.parametrize("path", examples.APPLICATION_SETS, ids=lambda p: p.stem)
def test_an_application_set_yields_the_applications_it_promises(path: Path) -> None:
    (appset,) = examples.of_kind(path, "ApplicationSet")
    appset["metadata"]["uid"] = "uid-1"  # as the API server stores it
    config_maps = {cm["metadata"]["name"]: cm["data"] for cm in examples.of_kind(path, "ConfigMap")}
    inputs = generators.GeneratorInputs(
        FLEET,
        config_maps=config_maps,
        decision_resources={
            ("cluster.open-cluster-management.io/v1beta1", "placementdecisions"): [PLACEMENT_DECISION]
        },
    )
    generation = generators.generate(appset["spec"], inputs)
    desired = plan.plan_application_set(appset, generation.params, FLEET)
    assert not desired.errors
    by_cluster: dict[str, list[str]] = {}
    for work in desired.works:
        by_cluster.setdefault(work.cluster, []).append(work.application)
    assert {c: sorted(apps) for c, apps in by_cluster.items()} == EXPECTED[path.stem]


def test_rolling_sync_delivers_every_application_with_automated_sync_off() -> None:
    path = examples.EXAMPLES / "applicationsets" / "rolling-sync.yaml"
    (appset,) = examples.of_kind(path, "ApplicationSet")
    appset["metadata"]["uid"] = "uid-1"
    generation = generators.generate(appset["spec"], generators.GeneratorInputs(FLEET))
    desired = plan.plan_application_set(appset, generation.params, FLEET)
    for work in desired.works:
        automated = work.worker_application["spec"]["syncPolicy"]["automated"]
        assert automated == {"prune": True, "selfHeal": True, "enabled": False}
    assert rollout.parse_strategy(appset["spec"]).steps[1].max_update == 1


def test_merge_overrides_the_revision_of_the_cluster_it_names() -> None:
    (appset,) = examples.of_kind(examples.EXAMPLES / "applicationsets" / "merge.yaml", "ApplicationSet")
    appset["metadata"]["uid"] = "uid-1"
    generation = generators.generate(appset["spec"], generators.GeneratorInputs(FLEET))
    desired = plan.plan_application_set(appset, generation.params, FLEET)
    revisions = {
        work.cluster: next(m for m in work.bundle["manifests"] if m["kind"] == "Application")["spec"][
            "source"
        ]["targetRevision"]
        for work in desired.works
    }
    assert revisions == {"dev-1": "HEAD", "prod-eu-1": "master"}
