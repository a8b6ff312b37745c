"""A team applies a namespaced composite itself (Crossplane v2's model, no claim) and gets a cluster.

On the provisioner of ``test_provisioner`` (the same real hub, Maestro and local provider): a
definition of scope ``Namespaced`` serves a namespaced ``TeamCluster`` kind, composed by a
``mode: Pipeline`` Composition whose first step is the worker-cluster template. Cases:
- a ``TeamCluster`` in the team's namespace becomes Ready with the ``Pipeline`` condition; its
  connection secret lands beside it; its inventory entry carries the team (the namespace);
  ``fleetplane trace teamcluster/NAME -n NS`` shows it; deleting it leaves no process or entry;
- a Pipeline Composition naming a function that is not installed is refused on the Composition,
  naming the step's field and the fix.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from localinfra import kubectl, process
from localinfra.environment import Environment
from tests.e2e.conftest import fleetplane
from tests.e2e.test_provisioner import Platform, _inventory, _worker_api, platform
from tests.unit.provisioner import builders

pytestmark = pytest.mark.e2e

__all__ = ["platform"]  # the module's provisioner, shared with test_provisioner

TEAM = "team-v2"
GROUP = "platform.fleetplane.io/v1alpha1"


def _ref(name: str) -> dict[str, Any]:
    return {"apiVersion": GROUP, "kind": "TeamCluster", "metadata": {"name": name, "namespace": TEAM}}


def _conditions(obj: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in ((obj or {}).get("status") or {}).get("conditions") or []}


async def _serve_team_clusters(platform: Platform) -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": TEAM}}
    objects = [namespace, builders.namespaced_definition(), builders.pipeline_composition()]
    await asyncio.to_thread(kubectl.apply, platform.hub.kubeconfig, objects)

    async def served() -> tuple[bool, Any]:
        found = await platform.hub_api.get(
            {
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": "teamclusters.platform.fleetplane.io"},
            }
        )
        established = _conditions(found).get("Established", {}).get("status") == "True"
        return established and (found or {})["spec"]["scope"] == "Namespaced", found

    await platform.eventually("the TeamCluster kind served, namespaced", served, timeout=60)


async def test_a_namespaced_composite_becomes_a_cluster_and_deleting_it_leaves_nothing(
    platform: Platform,
) -> None:
    await _serve_team_clusters(platform)
    name = f"v2-{uuid.uuid4().hex[:5]}"
    composite = builders.team_cluster(
        name, TEAM, labels={"env": "e2e"}, apps={"repoURL": platform.apps_repo, "path": "apps/configmap1"}
    )
    composite["spec"]["writeConnectionSecretToRef"] = {"name": f"{name}-kubeconfig"}
    del composite["metadata"]["generation"]
    await asyncio.to_thread(kubectl.apply, platform.hub.kubeconfig, [composite])

    async def ready() -> tuple[bool, Any]:
        found = await platform.hub_api.get(_ref(name))
        return _conditions(found).get("Ready", {}).get("status") == "True", _conditions(found)

    conditions = await platform.eventually(f"TeamCluster {TEAM}/{name} Ready", ready)
    assert conditions["Synced"]["status"] == "True"
    assert conditions["Pipeline"]["status"] == "True", conditions["Pipeline"]
    found = await platform.hub_api.get(_ref(name)) or {}
    cluster = found["status"]["cluster"]["name"]
    assert cluster != name and cluster.startswith(f"{name}-"), (
        "a namespaced composite's cluster carries a hash"
    )
    assert found["status"]["compositionRevision"].startswith("team-cluster-")

    # The connection secret lands in the team's namespace and reaches the new API server.
    worker = await _worker_api(platform, f"{name}-kubeconfig", TEAM)
    try:
        namespace = await worker.rest.request("GET", "/api/v1/namespaces/argocd")
        assert namespace["status"]["phase"] == "Active"
    finally:
        await worker.rest.close()
    inventory = await _inventory(platform, cluster)
    assert inventory is not None
    assert inventory["metadata"]["labels"]["fleetplane.io/team"] == TEAM
    assert inventory["metadata"]["labels"]["env"] == "e2e"

    traced = await asyncio.to_thread(
        fleetplane, "trace", f"teamcluster/{name}", "-n", TEAM, "--kubeconfig", str(platform.hub.kubeconfig)
    )
    assert f"TeamCluster {TEAM}/{name}  [Synced=True Ready=True  revision team-cluster-" in traced.stdout
    assert f"cluster {cluster} (local)  [Ready]" in traced.stdout

    await asyncio.to_thread(
        kubectl.run, platform.hub.kubeconfig, "delete", "teamcluster", name, "-n", TEAM, "--wait=false"
    )

    async def gone() -> tuple[bool, Any]:
        left = await platform.hub_api.get(_ref(name))
        return left is None, (left or {}).get("status")

    await platform.eventually(f"TeamCluster {name} deleted", gone, timeout=240)
    clusters = Environment(platform.clusters.root)
    alive = [n for n, r in clusters.processes.items() if n.startswith(f"{cluster}/") and process.is_alive(r)]
    assert alive == []
    assert await _inventory(platform, cluster) is None


async def test_a_pipeline_naming_a_function_not_installed_is_refused_naming_the_field(
    platform: Platform,
) -> None:
    composition = builders.pipeline_composition({"step": "policy", "functionRef": {"name": "size-policy"}})
    composition["metadata"]["name"] = "team-cluster-policy"
    await asyncio.to_thread(kubectl.apply, platform.hub.kubeconfig, [composition])
    ref = {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "Composition",
        "metadata": {"name": "team-cluster-policy"},
    }

    async def refused() -> tuple[bool, Any]:
        found = await platform.hub_api.get(ref)
        return _conditions(found).get("Synced", {}).get("status") == "False", _conditions(found)

    conditions = await platform.eventually("Synced=False on the Composition", refused, timeout=60)
    message = conditions["Synced"]["message"]
    assert message.startswith("spec.pipeline[1].functionRef.name: function 'size-policy' is not installed"), (
        message
    )
    assert "--function NAME=ADDRESS" in message
    await asyncio.to_thread(
        kubectl.run, platform.hub.kubeconfig, "delete", "composition", "team-cluster-policy"
    )
