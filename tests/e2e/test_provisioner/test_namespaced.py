"""A team applies a namespaced composite itself (Crossplane v2's model, no claim) and gets a cluster.

On the module's own provisioner (``kit.platform``: the real hub, a Maestro and the local provider), run
with a composition function server written with Crossplane's Python SDK (``size-policy``, called
over RunFunction gRPC): a definition of scope ``Namespaced`` serves a namespaced ``TeamCluster``
kind, composed by a ``mode: Pipeline`` Composition — the worker-cluster template, then
``size-policy`` with a limit of one node. Cases:
- a ``TeamCluster`` asking for two nodes gets the function's fatal result: ``Synced=False`` naming
  the step, and nothing is made; at one node it becomes Ready, with the function's warning (at the
  limit) in the ``Pipeline`` condition, its ``SizeChecked`` condition and the ConfigMap it added in
  the new cluster; its connection secret lands beside it; its inventory entry carries the team
  (the namespace); ``fleetplane trace teamcluster/NAME -n NS`` shows it; deleting it leaves no
  process or entry;
- a Pipeline Composition naming a function that is not installed is refused on the Composition,
  naming the step's field and the fix.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from localinfra import kubectl, process
from localinfra.environment import Environment
from tests import function_sdk
from tests.e2e.conftest import fleetplane
from tests.e2e.test_provisioner.kit import Platform, inventory_entry, worker_api
from tests.unit.provisioner import builders

pytestmark = pytest.mark.e2e

TEAM = "team-v2"
GROUP = "platform.fleetplane.io/v1alpha1"
POLICY = {"step": "size-policy", "functionRef": {"name": "size-policy"}, "input": {"maxNodeCount": 1}}


@pytest.fixture(scope="module")
def provisioner_args(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    server, address = function_sdk.serve(tmp_path_factory.mktemp("functions") / "size-policy.log")
    yield ["--function", f"size-policy={address}"]
    function_sdk.stop(server)


def _ref(name: str) -> dict[str, Any]:
    return {"apiVersion": GROUP, "kind": "TeamCluster", "metadata": {"name": name, "namespace": TEAM}}


def _conditions(obj: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in ((obj or {}).get("status") or {}).get("conditions") or []}


async def _serve_team_clusters(platform: Platform) -> None:
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": TEAM}}
    objects = [namespace, builders.namespaced_definition(), builders.pipeline_composition(POLICY)]
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


async def test_a_namespaced_composite_goes_through_its_pipeline_and_deleting_it_leaves_nothing(
    platform: Platform,
) -> None:
    await _serve_team_clusters(platform)
    name = f"v2-{uuid.uuid4().hex[:5]}"
    composite = builders.team_cluster(
        name,
        TEAM,
        labels={"env": "e2e"},
        apps={"repoURL": platform.apps_repo, "path": "apps/configmap1"},
        nodeCount=2,
    )
    composite["spec"]["writeConnectionSecretToRef"] = {"name": f"{name}-kubeconfig"}
    del composite["metadata"]["generation"]
    await asyncio.to_thread(kubectl.apply, platform.hub.kubeconfig, [composite])

    # Above the function's limit: a fatal result, and nothing is made.
    async def refused() -> tuple[bool, Any]:
        conditions = _conditions(await platform.hub_api.get(_ref(name)))
        return conditions.get("Synced", {}).get("reason") == "FatalResult", conditions

    conditions = await platform.eventually(f"TeamCluster {TEAM}/{name} refused by size-policy", refused)
    assert conditions["Synced"]["status"] == "False"
    assert conditions["Synced"]["message"] == (
        "pipeline step 'size-policy' (function 'size-policy'): nodeCount 2 is above the limit of 1"
    )
    assert (conditions["Pipeline"]["status"], conditions["Pipeline"]["reason"]) == ("False", "Fatal")
    found = await platform.hub_api.get(_ref(name)) or {}
    assert "cluster" not in (found.get("status") or {}), "a fatal result applies nothing"
    assert not any(n.startswith(f"{name}-") for n in Environment(platform.clusters.root).processes)

    patch = json.dumps({"spec": {"parameters": {"nodeCount": 1}}})
    await asyncio.to_thread(
        kubectl.run,
        platform.hub.kubeconfig,
        "patch",
        "teamcluster",
        name,
        "-n",
        TEAM,
        "--type",
        "merge",
        "-p",
        patch,
    )

    async def ready() -> tuple[bool, Any]:
        conditions = _conditions(await platform.hub_api.get(_ref(name)))
        return conditions.get("Ready", {}).get("status") == "True", conditions

    conditions = await platform.eventually(f"TeamCluster {TEAM}/{name} Ready", ready)
    assert conditions["Synced"]["status"] == "True"
    pipeline = conditions["Pipeline"]
    assert (pipeline["status"], pipeline["reason"]) == ("False", "Warning")
    assert pipeline["message"] == "size-policy: nodeCount 1 is at the limit of 1"
    assert (conditions["SizeChecked"]["status"], conditions["SizeChecked"]["reason"]) == (
        "True",
        "WithinLimit",
    )
    found = await platform.hub_api.get(_ref(name)) or {}
    cluster = found["status"]["cluster"]["name"]
    assert cluster != name and cluster.startswith(f"{name}-"), (
        "a namespaced composite's cluster carries a hash"
    )
    assert found["status"]["compositionRevision"].startswith("team-cluster-")

    # The connection secret lands in the team's namespace and reaches the new API server, where
    # the function's ConfigMap was applied.
    worker = await worker_api(platform, f"{name}-kubeconfig", TEAM)
    try:
        report = await worker.get(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "policy-report", "namespace": "default"},
            }
        )
        assert report is not None and report["data"] == {"composite": name, "nodeCount": "1", "limit": "1"}
        assert (
            "annotations" not in report["metadata"]
            or "fleetplane.io/target" not in report["metadata"]["annotations"]
        )
    finally:
        await worker.rest.close()
    inventory = await inventory_entry(platform, cluster)
    assert inventory is not None
    assert inventory["metadata"]["labels"]["fleetplane.io/team"] == TEAM
    assert inventory["metadata"]["labels"]["env"] == "e2e"

    traced = await asyncio.to_thread(
        fleetplane, "trace", f"teamcluster/{name}", "-n", TEAM, "--kubeconfig", str(platform.hub.kubeconfig)
    )
    assert f"TeamCluster {TEAM}/{name}  [Synced=True Ready=True  revision team-cluster-" in traced.stdout
    assert f"cluster {cluster} (local)  [Ready]" in traced.stdout
    assert "policy-report: workload ConfigMap default/policy-report  [Ready]" in traced.stdout

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
    assert await inventory_entry(platform, cluster) is None


async def test_a_pipeline_naming_a_function_not_installed_is_refused_naming_the_field(
    platform: Platform,
) -> None:
    composition = builders.pipeline_composition({"step": "quota", "functionRef": {"name": "quota-policy"}})
    composition["metadata"]["name"] = "team-cluster-quota"
    await asyncio.to_thread(kubectl.apply, platform.hub.kubeconfig, [composition])
    ref = {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "Composition",
        "metadata": {"name": "team-cluster-quota"},
    }

    async def refused() -> tuple[bool, Any]:
        found = await platform.hub_api.get(ref)
        return _conditions(found).get("Synced", {}).get("status") == "False", _conditions(found)

    conditions = await platform.eventually("Synced=False on the Composition", refused, timeout=60)
    message = conditions["Synced"]["message"]
    assert message.startswith(
        "spec.pipeline[1].functionRef.name: function 'quota-policy' is not installed"
    ), message
    assert "use one of fleetplane-template, size-policy" in message and "--function NAME=ADDRESS" in message
    await asyncio.to_thread(
        kubectl.run, platform.hub.kubeconfig, "delete", "composition", "team-cluster-quota"
    )
