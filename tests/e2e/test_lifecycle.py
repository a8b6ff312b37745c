"""The ApplicationSet lifecycle cases, on real components (see ``pull_fleet``).

Cases:
1. an ApplicationSet for ``configmap1`` targeting both workers with a repoURL that does not exist:
   a work per cluster in Maestro (query API); the Applications on both workers and the hub mirrors
   are ``Unknown`` with the worker's error carried to the hub; no ConfigMap on either worker;
2. the repoURL changed to the real repository: the works are updated; Synced and Healthy on both
   workers and on the hub; ``configmap1`` exists on both workers;
3. the ApplicationSet deleted: its works are deleted through the gRPC API, the Applications are
   gone from both workers and the hub, ``configmap1`` is removed from both workers (Argo CD's
   resources finalizer), and the ApplicationSet itself goes once that is done.
Also: a cluster added to the inventory gets the app and a cluster removed from it loses it; an
ApplicationSet with an unknown generator gets a condition and an event naming it, and the others
are untouched; an ApplicationSet created, then changed and its hub mirror deleted, while the
controllers are down is served and repaired when they start again.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import pytest

from controllers import contract
from localinfra import kube
from maestro.api import queries
from tests.e2e.conftest import INVENTORY_NAMESPACE, Kube, PullFleet, pulled_application_set

pytestmark = pytest.mark.e2e

MISSING_REPO = "file:///nonexistent/fleetplane-e2e/apps.git"
ARGOCD = "/apis/argoproj.io/v1alpha1/namespaces"


KubeApi = Callable[[kube.Cluster], Kube]


@pytest.fixture
async def kube_api() -> AsyncIterator[KubeApi]:
    """Raw API access to the fleet's clusters, closed after the test."""
    made: list[Kube] = []

    def make(cluster: kube.Cluster) -> Kube:
        made.append(Kube(cluster))
        return made[-1]

    yield make
    for client in made:
        await client.rest.close()


def application_set(name: str, selector: Mapping[str, str], repo: str, namespace: str = "default") -> dict:
    """An ApplicationSet opted in to the pull model: one ``<cluster>-<name>`` Application per cluster
    whose Secret carries ``selector``, auto-synced from ``apps/configmap1`` of ``repo``."""
    return pulled_application_set(
        name,
        {
            "generators": [{"clusters": {"selector": {"matchLabels": dict(selector)}}}],
            "template": {
                "metadata": {"name": f"{{{{name}}}}-{name}"},
                "spec": {
                    "project": "default",
                    "source": {"repoURL": repo, "targetRevision": "HEAD", "path": "apps/configmap1"},
                    "destination": {"name": "{{name}}", "namespace": namespace},
                    "syncPolicy": {
                        "automated": {"prune": True, "selfHeal": True},
                        "syncOptions": ["CreateNamespace=true"],
                    },
                },
            },
        },
    )


def appset_path(name: str) -> str:
    return f"{ARGOCD}/{INVENTORY_NAMESPACE}/applicationsets/{name}"


def app_path(name: str) -> str:
    return f"{ARGOCD}/argocd/applications/{name}"


def configmap_path(namespace: str = "default") -> str:
    return f"/api/v1/namespaces/{namespace}/configmaps/configmap1"


def sync_health(app: Mapping[str, Any] | None) -> tuple[str, str] | None:
    if app is None:
        return None
    status = app.get("status") or {}
    return (status.get("sync") or {}).get("status", ""), (status.get("health") or {}).get("status", "")


def error_conditions(app: Mapping[str, Any] | None) -> dict[str, str]:
    conditions = ((app or {}).get("status") or {}).get("conditions") or []
    return {c["type"]: c.get("message", "") for c in conditions if c.get("type", "").endswith("Error")}


async def works_of(fleet: PullFleet, appset: str) -> list[Any]:
    records, _ = await fleet.client.list(
        queries.ResourceFilter(source=contract.MAESTRO_SOURCE, labels={contract.LABEL_APPSET_NAME: appset})
    )
    return records


def repo_of(record: Any) -> str:
    return str(record.bundle.manifests[0]["spec"]["source"]["repoURL"])


async def test_lifecycle_of_an_application_set(
    pull_fleet: PullFleet, kube_api: Callable[[kube.Cluster], Kube]
) -> None:
    fleet = pull_fleet
    hub = kube_api(fleet.hub)
    workers = {c.name: kube_api(c) for c in fleet.workers}
    apps = [f"{c.name}-configmap1" for c in fleet.workers]
    for cluster in fleet.workers:
        await fleet.set_cluster_secret(cluster, {"e2e": "lifecycle"})
    appset = application_set("configmap1", {"e2e": "lifecycle"}, MISSING_REPO)
    await hub.create(f"{ARGOCD}/{INVENTORY_NAMESPACE}/applicationsets", appset)

    # --- case 1: a repository that does not exist ---------------------------------------------
    async def works_for_both() -> tuple[bool, Any]:
        records = await works_of(fleet, "configmap1")
        seen = sorted((r.bundle.consumer, repo_of(r), r.bundle.version) for r in records)
        return sorted(c for c, _, _ in seen) == sorted(workers) and all(
            repo == MISSING_REPO for _, repo, _ in seen
        ), seen

    await fleet.eventually("a work in Maestro for each worker, with the missing repoURL", works_for_both)

    async def unknown_everywhere() -> tuple[bool, Any]:
        seen = {}
        for cluster, app in zip(fleet.workers, apps, strict=True):
            worker_app = await workers[cluster.name].get(app_path(app))
            mirror = await hub.get(app_path(app))
            seen[app] = {
                "worker": (sync_health(worker_app), error_conditions(worker_app)),
                "hub": (sync_health(mirror), error_conditions(mirror)),
            }
        ok = all(
            s["worker"][0] is not None
            and s["worker"][0][0] == "Unknown"
            and s["worker"][1]
            and s["hub"][0] is not None
            and s["hub"][0][0] == "Unknown"
            # the worker's own error (e.g. ComparisonError) is on the hub, word for word
            and set(s["worker"][1].items()) <= set(s["hub"][1].items())
            for s in seen.values()
        )
        return ok, seen

    seen = await fleet.eventually(
        "sync status Unknown on both workers and on the hub, with the workers' error conditions on the hub",
        unknown_everywhere,
    )
    for app in apps:
        assert seen[app]["hub"][1], f"no error condition carried to the hub for {app}: {seen[app]}"
    for name, worker in workers.items():
        assert await worker.get(configmap_path()) is None, f"configmap1 exists on {name} with a missing repo"

    # --- case 2: the real repository ---------------------------------------------------------------
    await hub.merge(
        appset_path("configmap1"),
        {"spec": {"template": {"spec": {"source": {"repoURL": fleet.apps_repo}}}}},
    )

    async def works_updated() -> tuple[bool, Any]:
        records = await works_of(fleet, "configmap1")
        seen = sorted((r.bundle.consumer, repo_of(r), r.bundle.version) for r in records)
        ok = len(seen) == 2 and all(repo == fleet.apps_repo and v >= 2 for _, repo, v in seen)
        status = (await hub.get(appset_path("configmap1")) or {}).get("status") or {}
        return ok, {"works": seen, "ApplicationSet conditions": status.get("conditions")}

    await fleet.eventually("both works updated to the real repoURL (version 2)", works_updated)

    async def synced_everywhere() -> tuple[bool, Any]:
        seen = {}
        for cluster, app in zip(fleet.workers, apps, strict=True):
            seen[app] = {
                "worker": sync_health(await workers[cluster.name].get(app_path(app))),
                "hub": sync_health(await hub.get(app_path(app))),
                "configmap1": (await workers[cluster.name].get(configmap_path())) is not None,
            }
        ok = all(
            s["worker"] == ("Synced", "Healthy") and s["hub"] == ("Synced", "Healthy") and s["configmap1"]
            for s in seen.values()
        )
        return ok, seen

    await fleet.eventually(
        "Synced/Healthy on both workers and the hub, configmap1 on both workers", synced_everywhere
    )

    async def rolled_up() -> tuple[bool, Any]:
        status = (await hub.get(appset_path("configmap1")) or {}).get("status") or {}
        entries = {a["application"]: a["status"] for a in status.get("applicationStatus") or []}
        return entries == dict.fromkeys(apps, "Healthy"), status

    await fleet.eventually("the ApplicationSet's applicationStatus: both Healthy", rolled_up, timeout=60)

    # --- case 3: delete the ApplicationSet --------------------------------------------------------------
    await hub.delete(appset_path("configmap1"))

    async def all_gone() -> tuple[bool, Any]:
        seen: dict[str, Any] = {
            "works": [(r.bundle.consumer, r.bundle.deleting) for r in await works_of(fleet, "configmap1")],
            "appset": (await hub.get(appset_path("configmap1"))) is not None,
            "hub apps": [a for a in apps if await hub.get(app_path(a)) is not None],
        }
        for cluster, app in zip(fleet.workers, apps, strict=True):
            worker = workers[cluster.name]
            seen[cluster.name] = {
                "application": (await worker.get(app_path(app))) is not None,
                "configmap1": (await worker.get(configmap_path())) is not None,
            }
        ok = not seen["works"] and not seen["appset"] and not seen["hub apps"]
        ok = ok and all(
            not seen[c.name]["application"] and not seen[c.name]["configmap1"] for c in fleet.workers
        )
        return ok, seen

    await fleet.eventually(
        "no works in Maestro, no Application on the workers or the hub, no configmap1, no ApplicationSet",
        all_gone,
    )


async def test_inventory_changes_add_and_remove_targets(
    pull_fleet: PullFleet, kube_api: Callable[[kube.Cluster], Kube]
) -> None:
    fleet = pull_fleet
    hub = kube_api(fleet.hub)
    one, two = fleet.workers
    workers = {c.name: kube_api(c) for c in fleet.workers}
    await fleet.set_cluster_secret(one, {"e2e": "inventory"})
    await fleet.set_cluster_secret(two, {"e2e": "other"})
    appset = application_set("inventory", {"e2e": "inventory"}, fleet.apps_repo, namespace="inventory")
    await hub.create(f"{ARGOCD}/{INVENTORY_NAMESPACE}/applicationsets", appset)

    async def deployed_on(expected: set[str]) -> tuple[bool, Any]:
        seen = {}
        for cluster in fleet.workers:
            app = f"{cluster.name}-inventory"
            seen[cluster.name] = {
                "worker": sync_health(await workers[cluster.name].get(app_path(app))),
                "hub": sync_health(await hub.get(app_path(app))),
                "configmap1": (await workers[cluster.name].get(configmap_path("inventory"))) is not None,
            }
        ok = all(
            (s["worker"] == s["hub"] == ("Synced", "Healthy") and s["configmap1"])
            if name in expected
            else (s["worker"] is None and s["hub"] is None and not s["configmap1"])
            for name, s in seen.items()
        )
        return ok, seen

    try:
        await fleet.eventually(f"the app on {one.name} only", lambda: deployed_on({one.name}))
        await fleet.set_cluster_secret(two, {"e2e": "inventory"})  # a cluster joins the selection
        await fleet.eventually("the app on both workers", lambda: deployed_on({one.name, two.name}))
        await fleet.delete_cluster_secret(one)  # a cluster leaves the inventory
        await fleet.eventually(f"the app on {two.name} only", lambda: deployed_on({two.name}))
    finally:
        await hub.delete(appset_path("inventory"))
        await fleet.set_cluster_secret(one, {"e2e": "other"})

    async def gone() -> tuple[bool, Any]:
        records = await works_of(fleet, "inventory")
        return not records and await hub.get(appset_path("inventory")) is None, records

    await fleet.eventually("the inventory ApplicationSet and its works gone", gone)


async def test_unknown_generator_is_reported_and_others_untouched(
    pull_fleet: PullFleet, kube_api: Callable[[kube.Cluster], Kube]
) -> None:
    fleet = pull_fleet
    hub = kube_api(fleet.hub)
    one = fleet.workers[0]
    await fleet.set_cluster_secret(one, {"e2e": "healthy"})
    good = application_set("healthy", {"e2e": "healthy"}, fleet.apps_repo, namespace="healthy")
    bad = copy.deepcopy(good)
    bad["metadata"]["name"] = "broken"
    bad["spec"]["generators"] = [{"scmProvider": {"github": {"organization": "example"}}}]
    bad["spec"]["template"]["metadata"]["name"] = "{{name}}-broken"
    await hub.create(f"{ARGOCD}/{INVENTORY_NAMESPACE}/applicationsets", good)
    await hub.create(f"{ARGOCD}/{INVENTORY_NAMESPACE}/applicationsets", bad)
    try:

        async def reported() -> tuple[bool, Any]:
            status = (await hub.get(appset_path("broken")) or {}).get("status") or {}
            conditions = {c["type"]: c for c in status.get("conditions") or []}
            error = conditions.get("ErrorOccurred") or {}
            events = await hub.get(
                f"/api/v1/namespaces/{INVENTORY_NAMESPACE}/events",
                [("fieldSelector", "involvedObject.name=broken")],
            )
            warnings = [
                e.get("message", "") for e in (events or {}).get("items") or [] if e["type"] == "Warning"
            ]
            ok = (
                error.get("status") == "True"
                and "scmProvider" in error.get("message", "")
                and any("scmProvider" in w for w in warnings)
            )
            return ok, {"conditions": conditions, "warnings": warnings}

        await fleet.eventually("a condition and a Warning event naming the scmProvider generator", reported)

        async def healthy_untouched() -> tuple[bool, Any]:
            mirror = await hub.get(app_path(f"{one.name}-healthy"))
            return sync_health(mirror) == ("Synced", "Healthy"), sync_health(mirror)

        await fleet.eventually("the other ApplicationSet's app Synced/Healthy", healthy_untouched)
        assert not await works_of(fleet, "broken")
    finally:
        await hub.delete(appset_path("broken"))
        await hub.delete(appset_path("healthy"))

    async def gone() -> tuple[bool, Any]:
        left = [n for n in ("broken", "healthy") if await hub.get(appset_path(n)) is not None]
        return not left and not await works_of(fleet, "healthy"), left

    await fleet.eventually("both ApplicationSets and their works gone", gone)


async def test_controllers_restarted_converge(
    pull_fleet: PullFleet, kube_api: Callable[[kube.Cluster], Kube]
) -> None:
    fleet = pull_fleet
    hub = kube_api(fleet.hub)
    one = fleet.workers[0]
    worker = Kube(one)
    app = f"{one.name}-restart"
    await fleet.set_cluster_secret(one, {"e2e": "restart"})
    appset = application_set("restart", {"e2e": "restart"}, fleet.apps_repo, namespace="restart")

    async def deployed(label: str | None = None) -> tuple[bool, Any]:
        worker_app = await worker.get(app_path(app))
        labels = ((worker_app or {}).get("metadata") or {}).get("labels") or {}
        seen = {
            "worker": sync_health(worker_app),
            "hub": sync_health(await hub.get(app_path(app))),
            "worker label": labels.get("restarted"),
        }
        ok = seen["worker"] == seen["hub"] == ("Synced", "Healthy") and seen["worker label"] == label
        return ok, seen

    try:
        # created while the controllers are down: served when they start
        await asyncio.to_thread(fleet.controllers.stop)
        await hub.create(f"{ARGOCD}/{INVENTORY_NAMESPACE}/applicationsets", appset)
        fleet.controllers.start()
        await fleet.eventually("the app deployed after the controllers started", deployed)

        # changed, and its hub mirror deleted by hand, while they are down: both repaired
        await asyncio.to_thread(fleet.controllers.stop)
        await hub.merge(
            appset_path("restart"), {"spec": {"template": {"metadata": {"labels": {"restarted": "yes"}}}}}
        )
        await hub.delete(app_path(app))
        fleet.controllers.start()
        await fleet.eventually(
            "the change on the worker and the mirror back with its status", lambda: deployed("yes")
        )
    finally:
        if fleet.controllers.proc is None:
            fleet.controllers.start()
        await hub.delete(appset_path("restart"))

    async def gone() -> tuple[bool, Any]:
        seen = {
            "works": len(await works_of(fleet, "restart")),
            "worker app": await worker.get(app_path(app)) is not None,
            "appset": await hub.get(appset_path("restart")) is not None,
        }
        return not any(seen.values()), seen

    await fleet.eventually("the restart ApplicationSet, its work and its app gone", gone)
