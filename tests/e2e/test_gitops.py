"""The platform from Git: a worker cluster and its ApplicationSets come and go by commits.

On the provisioner's platform (the hub, a Maestro server, ``fleetplane provisioner run``; the
``platform`` fixture of ``tests.e2e.test_provisioner.kit``), the hub controllers (``fleetplane
controllers run``) and the management Argo CD (a real application controller and repo-server on
the hub, as its own ServiceAccount) syncing a local platform repository laid out as
docs/gitops.md says. One journey:

- the repository starts with the worker-cluster definition and Composition; a commit adds a
  team's claim and an ApplicationSet selecting nothing yet: the management Application is
  Progressing while the claim is not Ready, then Synced and Healthy once it is, with a worker
  cluster that runs its Argo CD and agent;
- the gitops demo's three ApplicationSet cases (``fleetplane demo --gitops``), played by the
  demo's own commits and checks on that cluster (the claim carries the demo's label);
- a commit changes the ApplicationSet's selector to the new cluster: its Application reaches the
  worker (``configmap1`` there), and its hub mirror is left alone by the management controller;
- a commit adds a claim the provisioner refuses (a reserved label): the Application is Degraded
  with the refusal, the claim's own message;
- a commit removes the claims and the ApplicationSet: the cluster is deleted, the Application
  Healthy again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from controllers import contract
from fleetplane.demo import gitops, journey
from kubeio import objects
from localinfra import argocd, hub_gitops, kube, kubectl, process
from localinfra.environment import Environment
from tests.e2e.conftest import Controllers, eventually
from tests.e2e.test_provisioner.kit import (  # noqa: F401  (fixtures used by name)
    TEAM,
    Platform,
    claim,
    platform,
    provisioner_args,
)

pytestmark = pytest.mark.e2e
MAESTRO_DELETION_GRACE = 60.0
#: the demo's label too: the demo's ApplicationSet selects the cluster
LABELS = {"env": "gitops-e2e", **journey.CLUSTER_LABELS}
APPSET = "gitops-configmap1"


@dataclasses.dataclass
class Managed:
    platform: Platform
    repo: Path
    controllers: Controllers

    @property
    def api(self) -> objects.Objects:
        return self.platform.hub_api

    async def commit(self, files: dict[str, str], message: str, remove: tuple[str, ...] = ()) -> None:
        await asyncio.to_thread(gitops.commit, self.platform.hub, self.repo, files, message, remove=remove)

    async def eventually(self, what: str, check: Callable[[], Awaitable[tuple[bool, Any]]]) -> Any:
        return await eventually(what, check, self.controllers.log, timeout=240)

    async def application(self, name: str = hub_gitops.APPLICATION) -> dict[str, Any]:
        ref = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": name, "namespace": hub_gitops.NAMESPACE},
        }
        return await self.api.get(ref) or {}


def _state(app: dict[str, Any]) -> dict[str, Any]:
    status = app.get("status") or {}
    return {
        "sync": (status.get("sync") or {}).get("status"),
        "health": status.get("health"),
        "resources": [(r.get("kind"), r.get("name"), r.get("health")) for r in status.get("resources") or []],
        "operation": (status.get("operationState") or {}).get("message"),
    }


@pytest.fixture(scope="module")
async def managed(
    platform: Platform,  # noqa: F811
    infra_env: Environment,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Managed]:
    folder = tmp_path_factory.mktemp("gitops")
    controllers = Controllers(platform.hub, platform.maestro, folder / "controllers.log")
    controllers.start()
    try:
        await asyncio.to_thread(gitops.start, infra_env, platform.hub, folder / "platform")
        yield Managed(platform, folder / "platform", controllers)
    finally:
        controllers.stop()
        # The journey removed what it committed; the Application goes, so the next module's
        # hub holds no Application of this one's.
        await asyncio.to_thread(
            kubectl.run,
            platform.hub.kubeconfig,
            "delete",
            "application",
            hub_gitops.APPLICATION,
            "-n",
            hub_gitops.NAMESPACE,
            "--ignore-not-found",
        )
        infra_env.stop_processes(f"{platform.hub.name}/{hub_gitops.ROLE}-")


async def test_clusters_and_their_applications_come_and_go_by_commits(managed: Managed) -> None:
    name = f"gitops-{uuid.uuid4().hex[:5]}"
    wanted = claim(name, managed.platform.apps_repo, LABELS)
    wanted["spec"]["parameters"]["apps"]["path"] = "apps/platform"  # configmap1 comes from the ApplicationSet
    appset_file = f"applicationsets/{APPSET}.yaml"
    files = {
        **gitops.team_files(TEAM, [wanted]),
        appset_file: gitops.manifest(
            [journey.application_set(managed.platform.apps_repo, name=APPSET, selector={"rollout": "later"})]
        ),
    }
    await managed.commit(files, f"a cluster for {TEAM}")

    # Progressing while the claim's cluster is being made, then Synced and Healthy once it is Ready.
    seen_health: list[str] = []

    async def healthy() -> tuple[bool, Any]:
        state = _state(await managed.application())
        ready, _ = await managed.platform.ready(name)
        health = (state["health"] or {}).get("status")
        if health == "Progressing" and not ready:
            seen_health.append(health)
        return (state["sync"], health) == ("Synced", "Healthy") and ready, state

    state = await managed.eventually("the platform Application Synced and Healthy, the claim Ready", healthy)
    assert seen_health, "the management Application was never Progressing while the claim was not Ready"
    (claimed,) = [h for k, n, h in state["resources"] if (k, n) == ("ClusterClaim", name)]
    assert claimed["status"] == "Healthy", state
    bound = await managed.platform.claim(name) or {}
    cluster = bound["spec"]["resourceRef"]["name"]
    clusters = Environment(managed.platform.clusters.root)
    assert argocd.is_running(clusters, cluster), "the new cluster's Argo CD is not running"
    assert any(
        n.startswith(f"{cluster}/") and "agent" in n and process.is_alive(r)
        for n, r in clusters.processes.items()
    ), f"no Maestro agent runs for {cluster}: {sorted(clusters.processes)}"

    # The gitops demo's three cases, by its own commits, waits and checks, on this cluster.
    await _play_the_gitops_demo(managed, cluster)

    # A commit that points the ApplicationSet at the new cluster rolls configmap1 out to it.
    moved = journey.application_set(managed.platform.apps_repo, name=APPSET, selector=LABELS)
    await managed.commit({appset_file: gitops.manifest([moved])}, "configmap1 to the gitops clusters")
    mirror_name = f"{cluster}-configmap1"

    async def rolled_out() -> tuple[bool, Any]:
        mirror = await managed.application(mirror_name)
        status = mirror.get("status") or {}
        state = ((status.get("sync") or {}).get("status"), (status.get("health") or {}).get("status"))
        return state == ("Synced", "Healthy"), state

    await managed.eventually(f"the hub mirror {mirror_name} Synced and Healthy from its worker", rolled_out)
    # The management controller leaves the mirror (skip-reconcile) alone: it writes its own
    # Application's status, and nothing of the mirror's.
    mirror, own = await managed.application(mirror_name), await managed.application()
    assert mirror["metadata"]["annotations"][contract.ARGOCD_SKIP_RECONCILE] == "true"
    assert (own.get("status") or {}).get("controllerNamespace") == hub_gitops.NAMESPACE
    assert "controllerNamespace" not in (mirror.get("status") or {})
    writers = {m["manager"] for m in own["metadata"].get("managedFields") or []} - {hub_gitops.FIELD_MANAGER}
    assert writers, "the management controller wrote nothing to its own Application"
    assert not writers & {m["manager"] for m in mirror["metadata"].get("managedFields") or []}

    # A claim the provisioner refuses makes the Application Degraded, saying why.
    refused = claim(f"{name}-forged", managed.platform.apps_repo, {"fleetplane.io/team": "team-b"})
    await managed.commit(gitops.team_files(TEAM, [refused]), "a claim with a reserved label")

    async def degraded() -> tuple[bool, Any]:
        state = _state(await managed.application())
        health = state["health"] or {}
        return health.get("status") == "Degraded", state

    state = await managed.eventually("the platform Application Degraded by the refused claim", degraded)
    (forged,) = [h for k, n, h in state["resources"] if n == f"{name}-forged"]
    assert forged["status"] == "Degraded"
    assert "fleetplane.io/team is reserved" in forged["message"]

    # A commit that removes the claims (and the ApplicationSet) deletes the cluster.
    gone = (gitops.claim_file(TEAM, name), gitops.claim_file(TEAM, f"{name}-forged"), appset_file)
    await managed.commit({}, f"{TEAM} no longer needs its cluster", remove=gone)

    async def deleted() -> tuple[bool, Any]:
        state = _state(await managed.application())
        left = Environment(managed.platform.clusters.root)
        alive = [n for n, r in left.processes.items() if n.startswith(f"{cluster}/") and process.is_alive(r)]
        claims = [await managed.platform.claim(n) for n in (name, f"{name}-forged")]
        mirror = await managed.application(mirror_name)
        ok = not alive and claims == [None, None] and not mirror and not kube.is_running(left, cluster)
        health = (state["health"] or {}).get("status")
        return ok and (state["sync"], health) == ("Synced", "Healthy"), {"alive": alive, **state}

    await managed.eventually(
        f"cluster {cluster} and the mirror {mirror_name} deleted, the platform Application Healthy", deleted
    )


async def _play_the_gitops_demo(managed: Managed, cluster: str) -> None:
    """What ``fleetplane demo --gitops`` plays once its fleet is Ready, on this fleet: the
    ApplicationSet committed with a repository that does not exist, corrected, removed, each case
    waited for as the demo waits (its hub Applications, ``configmap1`` on the worker)."""
    root = managed.platform.clusters.root

    def dead() -> list[process.ProcessRecord]:
        running = Environment(root).processes.items()
        return [r for n, r in running if n.startswith(f"{cluster}/") and not process.is_alive(r)]

    stage = journey.Stage(
        managed.platform.hub,
        [kube.Cluster.from_env(Environment(root), cluster)],
        managed.platform.apps_repo,
        managed.repo.parent,
        {"controllers": managed.controllers.log},
        dead,
    )
    shown = io.StringIO()
    steps = gitops.demo_steps(managed.repo)
    await asyncio.to_thread(journey.play, stage, Console(file=shown, width=200), steps=steps)
    for case in (1, 2, 3):
        assert f"case {case} passed in" in shown.getvalue(), shown.getvalue()
    assert "all three cases passed" in shown.getvalue()
