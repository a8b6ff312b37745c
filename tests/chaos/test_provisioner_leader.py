"""kill -9 of the provisioner's leader with claims in flight, on the chaos suite's Maestro.

Two ``fleetplane provisioner run`` replicas (leader election on a Lease of their own, default
timings: 15 s lease) on the session's hub, talking to the chaos pipeline's Maestro. ``CLAIMS``
ClusterClaims are applied at once; once a third of them are Ready the leader is killed -9. The
standby takes the Lease (the seconds from the kill are measured and printed) and serves the claims
left in flight: in the end every claim is Ready, with exactly one Maestro consumer and one hub
inventory entry each (found by the claims' label) and nothing else of theirs. Then every claim is
deleted: the claims, their consumers and inventory entries all go.

The clusters come from the ``simulated`` provider (a cluster's own API kept in the provisioner's
memory; claims, composites, revisions, inventory entries, connection Secrets, Maestro consumers and
certificates are real). A real local cluster per claim (kube-apiserver, Argo CD, agent) takes
minutes to start; the chaos suite's time budget has no room for a handful of them. A standby that
takes over finds the dead leader's simulated clusters gone and provisions them again under the
same registrations, which is what the exactly-once checks look at.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from benchmarks.chaos import claims, leaders
from kubeio import objects
from kubeio.rest import KubeRest
from localinfra import kube
from localinfra.environment import Environment
from provisioner import catalog, operator
from tests.chaos.environment import Chaos, LeaderReplica, until
from trust.identity import Identity

pytestmark = pytest.mark.chaos

CLAIMS = 12


class Platform:
    """What a user of the provisioner reads: the Lease, the claims, Maestro's consumers, the hub
    inventory; every wait fails with the replicas' logs."""

    def __init__(self, rest: KubeRest, chaos: Chaos, replicas: list[LeaderReplica], run: str) -> None:
        self.rest, self.chaos, self.replicas, self.run = rest, chaos, replicas, run
        self.namespace = f"chaos-claims-{run}"
        self.claims = claims.path(self.namespace)
        self.lease = f"provisioner-{run}"
        self.reads = leaders.HubReads(
            rest, lambda: chaos.live_server().address, chaos.rig.credentials(), chaos.dsn
        )

    async def holder(self) -> str:
        return await self.reads.holder(self.lease)

    async def snapshot(self) -> claims.Snapshot:
        return await self.reads.claims(self.claims, self.run)

    async def until(
        self, what: str, check: Callable[[], Awaitable[tuple[bool, Any]]], timeout: float = 240
    ) -> Any:
        return await until(what, check, self.replicas, timeout=timeout)


@contextlib.asynccontextmanager
async def provisioners(
    env: Environment, hub: kube.Cluster, chaos: Chaos, log_dir: Path, run: str
) -> AsyncIterator[list[LeaderReplica]]:
    tls = chaos.rig.identity(Identity.admin(operator.MAESTRO_SOURCE))
    argv = leaders.provisioner_argv(
        hub.kubeconfig,
        chaos.servers[0].address,
        chaos.rig.kafka.bootstrap,
        chaos.rig.topics.prefix,
        tls,
        # the session's CA, which Maestro trusts, issues each cluster's agent and Redis certificates
        env.path("pki"),
        f"provisioner-{run}",
    )
    replicas = [LeaderReplica(env, f"chaos/provisioner-{run}-{i}", argv, log_dir) for i in (1, 2)]
    try:
        await asyncio.gather(*(asyncio.to_thread(r.start) for r in replicas))
        yield replicas
    finally:
        for r in replicas:
            await asyncio.to_thread(r.forget)


async def test_the_provisioners_standby_takes_over_claims_in_flight(
    chaos: Chaos, hub: kube.Cluster, tmp_path: Path
) -> None:
    run = leaders.run_id()
    rest = KubeRest.from_kubeconfig(hub.kubeconfig)
    try:
        await operator.install(objects.Objects(rest), catalog.COMPOSITIONS_DIR / "worker-cluster")
        async with provisioners(chaos.env, hub, chaos, tmp_path, run) as replicas:
            platform = Platform(rest, chaos, replicas, run)
            names = [f"c-{run}-{i:02d}" for i in range(CLAIMS)]
            hub_objects = objects.Objects(rest)
            await hub_objects.apply(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": platform.namespace}},
                field_manager="chaos",
            )

            async def one_leads() -> tuple[bool, Any]:
                identities = {r: r.identity() for r in replicas}
                roles = leaders.leader_and_standby(await platform.holder(), identities)
                return roles is not None, roles

            leader, standby = await platform.until("a replica to lead", one_leads)
            started = time.monotonic()
            await asyncio.gather(
                *(
                    hub_objects.apply(claims.claim(n, platform.namespace, run), field_manager="chaos")
                    for n in names
                )
            )

            async def some_ready() -> tuple[bool, Any]:
                ready = (await platform.snapshot()).ready
                return len(ready) >= CLAIMS // 3, len(ready)

            in_flight = CLAIMS - await platform.until(f"{CLAIMS // 3} claims Ready", some_ready)
            await asyncio.to_thread(leader.kill_hard)
            killed = time.monotonic()
            chaos.note(f"provisioner leader {leader.short} killed -9 with {in_flight} claims not Ready")

            async def standby_leads() -> tuple[bool, Any]:
                holder = await platform.holder()
                return holder == standby.identity(), holder

            await platform.until("the standby to take the Lease", standby_leads, timeout=120)
            takeover = time.monotonic() - killed

            async def all_ready() -> tuple[bool, Any]:
                ready = (await platform.snapshot()).ready
                return ready == names, f"{len(ready)}/{CLAIMS} Ready"

            await platform.until("every claim Ready", all_ready)
            to_ready, from_apply = time.monotonic() - killed, time.monotonic() - started

            # Exactly once: one consumer and one inventory entry per claim, nothing else of theirs.
            async def one_each() -> tuple[bool, Any]:
                snapshot = await platform.snapshot()
                return not claims.pending_provisioned(names, snapshot), snapshot

            snapshot = await platform.until("a consumer and an entry per claim", one_each, 60)
            consumers, inventory = snapshot.consumers, snapshot.inventory
            assert len(set(consumers)) == CLAIMS and len(set(inventory)) == CLAIMS, (consumers, inventory)
            assert standby.alive and not leader.alive

            deleting = time.monotonic()
            for n in names:
                await rest.request("DELETE", f"{platform.claims}/{n}")

            async def all_gone() -> tuple[bool, Any]:
                left = claims.pending_gone(await platform.snapshot())
                return not left, left

            await platform.until("the claims, their consumers and inventory entries gone", all_gone)
            deleted = time.monotonic() - deleting
            print(
                f"kill -9 of the provisioner's leader: claims {CLAIMS}, in flight {in_flight}, "
                f"takeover {takeover:.1f}, every claim Ready {to_ready:.1f} after the kill "
                f"({from_apply:.1f} from the apply), deleted {deleted:.1f}"
            )
    finally:
        await rest.close()
