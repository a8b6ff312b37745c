"""kill -9 of the hub controllers' leader during a rollout of Applications, on the chaos suite's
Maestro and its real agents.

Two ``fleetplane controllers run`` replicas (leader election on a Lease of their own, default
timings: 15 s lease) on the session's hub, sending works to the chaos pipeline's Maestro, whose
consumers are the session's worker clusters, each with its real agent. An inventory Secret per
worker cluster and ``APPSETS`` pulled ApplicationSets (a clusters generator picking both) make two
Applications each. Once a third of their works are in Maestro, every third ApplicationSet's
template is changed; then the leader is killed -9 and every fifth ApplicationSet is deleted while
nobody leads. The standby takes the Lease (the seconds from the kill are measured and printed) and
serves what changed. In the end the outcome is exact: every Application once on its worker at its
last template, its hub mirror once with the status the worker's Application has (whatever that
cluster's Argo CD made of it, or nothing where no Argo CD runs), the deleted ApplicationSets gone
with their Applications on the hub and the workers and their works in Maestro, one work per
(ApplicationSet, cluster), no status sequence id sent twice for a work, the outbox empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.chaos import appsets, leaders
from controllers import contract
from kubeio.errors import NotFoundError
from kubeio.rest import MERGE_PATCH, KubeRest
from localinfra import argocd, kube, kubectl
from tests.chaos.environment import Chaos, LeaderReplica, until
from trust import files
from trust.identity import Identity

pytestmark = pytest.mark.chaos

#: ApplicationSets, each making an Application on both worker clusters
APPSETS = 60
INVENTORY = appsets.NAMESPACE
#: where the controllers write the Applications on the workers (their default)
WORKER_NAMESPACE = appsets.NAMESPACE


class Fleet:
    """What a user reads: the Lease, the hub's ApplicationSets and Applications, the workers'
    Applications, Maestro's works and status topics, the outbox."""

    def __init__(self, hub: KubeRest, workers: dict[str, KubeRest], chaos: Chaos, run: str) -> None:
        self.hub, self.workers, self.chaos, self.run = hub, workers, chaos, run
        self.lease = f"controllers-{run}"
        self.plan = appsets.Plan.of(run, APPSETS, list(workers))
        self.names = self.plan.names
        self.reads = leaders.HubReads(
            hub, lambda: chaos.live_server().address, chaos.rig.credentials(), chaos.dsn
        )
        #: every work id of the run ever listed (a deleted one's status reports stay in the topics)
        self.work_ids: set[str] = set()

    async def holder(self) -> str:
        return await self.reads.holder(self.lease)

    async def works(self) -> Counter[tuple[str, str]]:
        """How many works Maestro holds per (ApplicationSet, cluster) of the run."""
        return await self.reads.works(self.plan.prefix, self.work_ids)

    async def pending(self) -> list[str]:
        """What keeps the outcome from being exact (empty: it is)."""
        snapshot = appsets.Snapshot(
            await self.works(),
            await self.reads.appset_names(),
            await self.reads.applications(self.run),
            {c: await self.reads.applications(self.run, rest) for c, rest in self.workers.items()},
            await self.reads.outbox(),
        )
        return appsets.pending(self.plan, snapshot)


@contextlib.asynccontextmanager
async def controllers(
    hub: kube.Cluster, chaos: Chaos, log_dir: Path, run: str
) -> AsyncIterator[list[LeaderReplica]]:
    folder = chaos.rig.identity(Identity.source(contract.MAESTRO_SOURCE))
    tls = files.TLSFiles(folder / "ca.crt", folder / "tls.crt", folder / "tls.key")
    argv = leaders.controllers_argv(hub.kubeconfig, chaos.servers[0].address, tls, f"controllers-{run}")
    replicas = [LeaderReplica(chaos.env, f"chaos/controllers-{run}-{i}", argv, log_dir) for i in (1, 2)]
    try:
        await asyncio.gather(*(asyncio.to_thread(r.start) for r in replicas))
        yield replicas
    finally:
        for r in replicas:
            await asyncio.to_thread(r.forget)


async def delete_served(fleet: Fleet, replicas: list[LeaderReplica]) -> None:
    """The run's ApplicationSets deleted while a replica serves them: their works and Applications
    go with them (bounded; ``remove_left`` takes off what is left)."""
    for name in fleet.names:
        with contextlib.suppress(NotFoundError):
            await fleet.hub.request("DELETE", f"{appsets.APPSETS}/{name}")
    deadline = time.monotonic() + 90
    while any(r.alive for r in replicas) and time.monotonic() < deadline:
        if not await fleet.reads.appset_names() & set(fleet.names):
            return
        await asyncio.sleep(1)


async def remove_left(fleet: Fleet, secrets: list[dict[str, Any]]) -> None:
    """Once no replica runs: the finalizers of ApplicationSets still there taken off by hand, and
    the inventory Secrets deleted."""
    for name in fleet.names:
        with contextlib.suppress(NotFoundError):
            await fleet.hub.request(
                "PATCH",
                f"{appsets.APPSETS}/{name}",
                body={"metadata": {"finalizers": None}},
                content_type=MERGE_PATCH,
            )
    for secret in secrets:
        with contextlib.suppress(NotFoundError):
            await fleet.hub.request(
                "DELETE", f"/api/v1/namespaces/{INVENTORY}/secrets/{secret['metadata']['name']}"
            )


async def test_the_controllers_standby_takes_over_a_rollout_of_applications(
    chaos: Chaos, hub: kube.Cluster, tmp_path: Path
) -> None:
    run = leaders.run_id()
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": WORKER_NAMESPACE}}
    for cluster in chaos.rig.clusters:
        # The agents apply Argo CD Applications: their CRD and namespace, Argo CD running there or not.
        await asyncio.to_thread(argocd.install_crds, cluster)
        await asyncio.to_thread(kubectl.apply, cluster.kubeconfig, [namespace], field_manager="chaos")
    secrets = [appsets.run_secret(c.name, run) for c in chaos.rig.clusters]
    inventory = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": INVENTORY}}
    await asyncio.to_thread(kubectl.apply, hub.kubeconfig, [inventory, *secrets], field_manager="chaos")
    rest = KubeRest.from_kubeconfig(hub.kubeconfig)
    workers = {c.name: KubeRest.from_kubeconfig(c.kubeconfig) for c in chaos.rig.clusters}
    fleet = Fleet(rest, workers, chaos, run)
    try:
        async with controllers(hub, chaos, tmp_path, run) as replicas:
            try:

                async def one_leads() -> tuple[bool, Any]:
                    identities = {r: r.identity() for r in replicas}
                    roles = leaders.leader_and_standby(await fleet.holder(), identities)
                    return roles is not None, roles

                leader, standby = await until("a replica to lead", one_leads, replicas, timeout=60)
                total = fleet.plan.applications
                started = time.monotonic()
                await asyncio.gather(
                    *(
                        rest.request("POST", appsets.APPSETS, body=appsets.application_set(n, run, "apps"))
                        for n in fleet.names
                    )
                )

                async def a_third_served() -> tuple[bool, Any]:
                    served = sum((await fleet.works()).values())
                    return served >= total // 3, served

                served = await until(f"{total // 3} works in Maestro", a_third_served, replicas)
                for i, n in enumerate(fleet.names):
                    if appsets.changed(i):
                        await rest.request(
                            "PATCH", f"{appsets.APPSETS}/{n}", body=appsets.CHANGE, content_type=MERGE_PATCH
                        )
                await asyncio.to_thread(leader.kill_hard)
                killed = time.monotonic()
                chaos.note(
                    f"controllers leader {leader.short} killed -9 with {served}/{total} works in Maestro"
                )
                for i, n in enumerate(fleet.names):
                    if appsets.deleted(i):
                        await rest.request("DELETE", f"{appsets.APPSETS}/{n}")

                async def standby_leads() -> tuple[bool, Any]:
                    holder = await fleet.holder()
                    return holder == standby.identity(), holder

                await until("the standby to take the Lease", standby_leads, replicas, timeout=120)
                takeover = time.monotonic() - killed

                async def exact() -> tuple[bool, Any]:
                    left = await fleet.pending()
                    return not left, f"{len(left)} pending, e.g. {left[:5]}"

                await until(
                    "the exact outcome", exact, [*replicas, *chaos.rig.processes], timeout=300, period=1
                )
                to_exact, from_apply = time.monotonic() - killed, time.monotonic() - started

                sent = await asyncio.to_thread(chaos.sent_statuses, fleet.work_ids)
                twice = appsets.sent_twice(sent)
                assert not twice, f"status sequence ids sent twice: {twice}"
                assert standby.alive and not leader.alive
                print(
                    f"kill -9 of the controllers' leader: ApplicationSets {APPSETS}, Applications {total}, "
                    f"{served} works in Maestro at the kill, takeover {takeover:.1f}, exact {to_exact:.1f} "
                    f"after the kill ({from_apply:.1f} from the apply)"
                )
            finally:
                await delete_served(fleet, replicas)
    finally:
        await remove_left(fleet, secrets)
        await rest.close()
        for worker in workers.values():
            await worker.close()
