"""RollingSync and the placement generators end to end, on real components (see ``pull_fleet``):
Argo CD on both workers, Maestro, the hub controllers; one module, so both share one fleet.

Cases:

- RollingSync over two steps, one cluster each: both Applications reach their clusters at once,
  with automated sync off; the step-2 cluster's Argo CD syncs only after the step-1 Application
  is Healthy (every ``applicationStatus`` seen on the way says so, and its sync started after
  step 1 turned Healthy); then a change whose step-1 Application never becomes Healthy (a
  Deployment no kubelet runs) is synced on the step-1 cluster and never on the step-2 one, while
  the ApplicationSet reports step 1 rolling out.
- clusterDecisionResource (OCM's PlacementDecision CRD), matrix and merge: each cluster's Argo CD
  shows exactly the Applications they generate for it, Synced and Healthy, deployed in the
  namespaces their parameters name.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from controllers import contract
from controllers.propagation import progressive_sync
from localinfra import gitrepo, kubectl
from tests.e2e.conftest import INVENTORY_NAMESPACE, PullFleet, pulled_application_set
from tests.e2e.test_lifecycle import (
    ARGOCD,
    Kube,
    app_path,
    appset_path,
    configmap_path,
    sync_health,
    works_of,
)
from tests.integration.conformance import hub as conformance_hub

pytestmark = pytest.mark.e2e

APPSETS = f"{ARGOCD}/{INVENTORY_NAMESPACE}/applicationsets"

#: a Deployment the workers never run (they have no kubelet): Argo CD reports it Progressing forever
STUCK = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: never-ready
spec:
  replicas: 1
  selector:
    matchLabels: {app: never-ready}
  template:
    metadata:
      labels: {app: never-ready}
    spec:
      containers:
        - name: main
          image: registry.invalid/never:1
"""

STUCK_PATH = "/apis/apps/v1/namespaces/rolling/deployments/never-ready"


async def remove(fleet: PullFleet, hub: Kube, name: str) -> None:
    await hub.delete(appset_path(name))

    async def gone() -> tuple[bool, Any]:
        records = await works_of(fleet, name)
        return not records and await hub.get(appset_path(name)) is None, records

    await fleet.eventually(f"ApplicationSet {name} and its works gone", gone)


def template(name: str, repo: str, path: str, namespace: str) -> dict[str, Any]:
    """Application ``name`` on the generated cluster, auto-synced from ``path`` of ``repo``."""
    return {
        "metadata": {"name": name},
        "spec": {
            "project": "default",
            "source": {"repoURL": repo, "targetRevision": "HEAD", "path": path},
            "destination": {"name": "{{name}}", "namespace": namespace},
            "syncPolicy": {
                "automated": {"prune": True, "selfHeal": True},
                "syncOptions": ["CreateNamespace=true"],
            },
        },
    }


def rolling_application_set(repo: str) -> dict[str, Any]:
    steps = [{"matchExpressions": [{"key": "step", "operator": "In", "values": [s]}]} for s in ("one", "two")]
    labelled = template("{{name}}-rolling", repo, "rolling/good", "rolling")
    labelled["metadata"]["labels"] = {"step": "{{metadata.labels.step}}"}
    return pulled_application_set(
        "rolling",
        {
            "generators": [{"clusters": {"selector": {"matchLabels": {"e2e": "rolling"}}}}],
            "strategy": {"type": "RollingSync", "rollingSync": {"steps": steps}},
            "template": labelled,
        },
    )


def rollout_of(appset: dict[str, Any] | None) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """The ApplicationSet's applicationStatus by Application, and its RolloutProgressing condition."""
    status = (appset or {}).get("status") or {}
    entries = {e["application"]: e for e in status.get("applicationStatus") or []}
    conditions = [c for c in status.get("conditions") or [] if c["type"] == "RolloutProgressing"]
    return entries, conditions[0] if conditions else {}


async def test_rolling_sync_syncs_step_two_only_after_step_one_is_healthy(
    pull_fleet: PullFleet, clients: dict[str, Kube], tmp_path: Path
) -> None:
    fleet = pull_fleet
    hub = clients["hub"]
    first, second = fleet.workers
    apps = {first.name: f"{first.name}-rolling", second.name: f"{second.name}-rolling"}
    repo = tmp_path / "rolling"
    files = {"rolling/good/configmap.yaml": gitrepo.CONFIGMAP1, "rolling/stuck/deployment.yaml": STUCK}
    await asyncio.to_thread(gitrepo.commit, repo, files, "a good and a stuck version")
    await fleet.set_cluster_secret(first, {"e2e": "rolling", "step": "one"})
    await fleet.set_cluster_secret(second, {"e2e": "rolling", "step": "two"})
    await hub.create(APPSETS, rolling_application_set(gitrepo.url(repo)))
    seen: list[dict[str, str]] = []

    async def worker_app(cluster: Any) -> dict[str, Any] | None:
        return await clients[cluster.name].get(app_path(apps[cluster.name]))

    async def both_healthy() -> tuple[bool, Any]:
        entries, condition = rollout_of(await hub.get(appset_path("rolling")))
        statuses = {app: e["status"] for app, e in entries.items()}
        if statuses and statuses not in seen:
            seen.append(statuses)
        workers = {c.name: sync_health(await worker_app(c)) for c in fleet.workers}
        done = set(statuses.values()) == {"Healthy"} and len(statuses) == 2
        return done and condition.get("status") == "False", (statuses, condition, workers)

    try:
        # --- every Application is delivered at once, with automated sync off -----------------------
        async def delivered() -> tuple[bool, Any]:
            found = {c.name: await worker_app(c) for c in fleet.workers}
            policies = {n: ((a or {}).get("spec") or {}).get("syncPolicy") for n, a in found.items()}
            return all(p and p["automated"].get("enabled") is False for p in policies.values()), policies

        await fleet.eventually("both Applications on their clusters, automated sync off", delivered)
        await fleet.eventually("step 1, then step 2, Synced and Healthy", both_healthy, timeout=240)
        one, two = apps[first.name], apps[second.name]
        for statuses in seen:  # every applicationStatus seen on the way
            if statuses.get(two) in ("Pending", "Progressing", "Healthy"):
                assert statuses.get(one) == "Healthy", f"step 2 moved before step 1 was Healthy: {seen}"
        entries, _ = rollout_of(await hub.get(appset_path("rolling")))
        assert {e["step"] for e in entries.values()} == {"1", "2"} and entries[one]["step"] == "1"
        step_one_healthy = progressive_sync.parse_time(entries[one]["lastTransitionTime"])
        synced_two = ((await worker_app(second)) or {})["status"]["operationState"]
        assert synced_two["operation"]["initiatedBy"]["username"] == "applicationset-controller"
        started_two = progressive_sync.parse_time(synced_two["startedAt"])
        assert step_one_healthy and started_two and started_two >= step_one_healthy, (entries, synced_two)
        assert await clients[second.name].get(configmap_path("rolling")) is not None

        # --- a change whose step-1 Application never becomes Healthy ------------------------------
        await hub.merge(
            appset_path("rolling"), {"spec": {"template": {"spec": {"source": {"path": "rolling/stuck"}}}}}
        )

        async def step_one_stuck() -> tuple[bool, Any]:
            entries, condition = rollout_of(await hub.get(appset_path("rolling")))
            state = (await worker_app(first) or {}).get("status") or {}
            deployed = await clients[first.name].get(STUCK_PATH)
            ok = (
                (entries.get(one) or {}).get("status") == "Progressing"
                and deployed is not None
                and (state.get("health") or {}).get("status") == "Progressing"
                and condition.get("message") == "ApplicationSet is performing rollout of step 1"
            )
            return ok, (entries, condition, state.get("health"))

        await fleet.eventually("step 1 synced the change and stays Progressing", step_one_stuck)
        for _ in range(6):  # step 2's cluster never syncs it
            entries, condition = rollout_of(await hub.get(appset_path("rolling")))
            assert (entries.get(two) or {}).get("status") == "Waiting", entries
            assert condition.get("status") == "True", condition
            app = await worker_app(second) or {}
            assert app["spec"]["source"]["path"] == "rolling/stuck", "the change is delivered"
            assert (sync_health(app) or ("", ""))[0] == "OutOfSync", app.get("status")
            deployed = await clients[second.name].get(STUCK_PATH)
            assert deployed is None
            await asyncio.sleep(5)
    finally:
        await remove(fleet, hub, "rolling")
        for cluster in fleet.workers:
            await fleet.set_cluster_secret(cluster, {"e2e": "other"})


def placement_application_sets(repo: str, special: str) -> list[dict[str, Any]]:
    """clusterDecisionResource, matrix and merge, each deploying ``apps/configmap1`` of ``repo``;
    the merge gives cluster ``special`` a namespace of its own."""

    def appset(name: str, generator: dict[str, Any], app_name: str, namespace: str) -> dict[str, Any]:
        spec = {"generators": [generator], "template": template(app_name, repo, "apps/configmap1", namespace)}
        return pulled_application_set(name, spec)

    selected = {"clusters": {"selector": {"matchLabels": {"e2e": "placed"}}}}
    teams = [{"team": "red"}, {"team": "blue"}]
    return [
        appset(
            "placed",
            {
                "clusterDecisionResource": {
                    "configMapRef": conformance_hub.OCM_CONFIG_MAP_NAME,
                    "labelSelector": {"matchLabels": {"cluster.open-cluster-management.io/placement": "e2e"}},
                }
            },
            "{{name}}-placed",
            "placed",
        ),
        appset(
            "crossed",
            {"matrix": {"generators": [{"list": {"elements": teams}}, selected]}},
            "{{name}}-crossed-{{team}}",
            "crossed-{{team}}",
        ),
        appset(
            "merged",
            {
                "merge": {
                    "mergeKeys": ["name"],
                    "generators": [
                        {"clusters": {**selected["clusters"], "values": {"ns": "merged-default"}}},
                        {"list": {"elements": [{"name": special, "values.ns": "merged-special"}]}},
                    ],
                }
            },
            "{{name}}-merged",
            "{{values.ns}}",
        ),
    ]


async def test_placement_matrix_and_merge_show_on_each_clusters_argo_cd(
    pull_fleet: PullFleet, clients: dict[str, Kube]
) -> None:
    fleet = pull_fleet
    hub = clients["hub"]
    first, second = fleet.workers
    decision = {
        "apiVersion": "cluster.open-cluster-management.io/v1beta1",
        "kind": "PlacementDecision",
        "metadata": {
            "name": "e2e-placement-decision-1",
            "namespace": INVENTORY_NAMESPACE,
            "labels": {"cluster.open-cluster-management.io/placement": "e2e"},
        },
    }
    duck_type = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": conformance_hub.OCM_CONFIG_MAP_NAME, "namespace": INVENTORY_NAMESPACE},
        "data": conformance_hub.OCM_CONFIG_MAP,
    }
    crd = conformance_hub.PLACEMENT_DECISION_CRD
    await asyncio.to_thread(kubectl.apply, fleet.hub.kubeconfig, [crd])
    await asyncio.to_thread(kubectl.wait_established, fleet.hub.kubeconfig, crd["metadata"]["name"])
    await asyncio.to_thread(kubectl.apply, fleet.hub.kubeconfig, [duck_type, decision])
    group = "/apis/cluster.open-cluster-management.io/v1beta1"
    await hub.merge(  # as OCM's placement controller decides
        f"{group}/namespaces/{INVENTORY_NAMESPACE}/placementdecisions/e2e-placement-decision-1/status",
        {"status": {"decisions": [{"clusterName": first.name, "reason": "e2e"}]}},
    )
    for cluster in fleet.workers:
        await fleet.set_cluster_secret(cluster, {"e2e": "placed"})
    appsets = placement_application_sets(fleet.apps_repo, second.name)
    expected = {  # cluster -> Application -> the namespace it deploys configmap1 to
        first.name: {
            f"{first.name}-placed": "placed",
            f"{first.name}-crossed-red": "crossed-red",
            f"{first.name}-crossed-blue": "crossed-blue",
            f"{first.name}-merged": "merged-default",
        },
        second.name: {
            f"{second.name}-crossed-red": "crossed-red",
            f"{second.name}-crossed-blue": "crossed-blue",
            f"{second.name}-merged": "merged-special",
        },
    }
    for appset in appsets:
        await hub.create(APPSETS, appset)

    async def shown() -> tuple[bool, Any]:
        seen: dict[str, Any] = {}
        for cluster in fleet.workers:
            listed = await clients[cluster.name].get(
                f"{ARGOCD}/argocd/applications",
                [("labelSelector", f"{contract.LABEL_APPSET_NAME} in (placed,crossed,merged)")],
            )
            on_cluster = {}
            for app in (listed or {}).get("items") or []:
                name = app["metadata"]["name"]
                namespace = app["spec"]["destination"].get("namespace", "")
                deployed = await clients[cluster.name].get(configmap_path(namespace)) is not None
                on_cluster[name] = (namespace, sync_health(app), deployed)
            seen[cluster.name] = on_cluster
        ok = all(
            {n: ns for n, (ns, _, _) in seen[c].items()} == expected[c]
            and all(state == ("Synced", "Healthy") and deployed for _, state, deployed in seen[c].values())
            for c in expected
        )
        return ok, seen

    try:
        await fleet.eventually("each cluster's Argo CD shows its Applications, Synced and Healthy", shown)
    finally:
        for appset in appsets:
            await remove(fleet, hub, appset["metadata"]["name"])
        for cluster in fleet.workers:
            await fleet.set_cluster_secret(cluster, {"e2e": "other"})
