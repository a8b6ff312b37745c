"""``bench chaos``'s kills of the operators' leaders, played as the chaos suite plays them.

Both run on a hub of their own (etcd and a kube-apiserver with Argo CD's and the provisioner's
CRDs, as ``bench fleet`` starts it), started once for both, and on the benchmark's pipeline: two
replicas of the operator compete for a Lease (default timings); the one holding it is killed -9
a third of the way through the workload and the standby takes over.

- ``controllers-leader``: the simulated agents' clusters are the fleet (an inventory Secret each);
  ApplicationSets x clusters ~ ``works`` Applications (`appsets`). Once a third of the works are in
  Maestro every third ApplicationSet's template changes, the leader is killed, every fifth
  ApplicationSet is deleted while nobody leads; then until `appsets.pending` is empty (what the
  hub, Maestro and the simulated clusters hold) and no status sequence id was sent twice.
- ``provisioner-leader``: a tenth of ``works`` ClusterClaims (at least 20) on the simulated
  provider (`claims`), struck once a third are Ready; until each is Ready with exactly one
  consumer and inventory entry, then until the deleted claims left nothing behind.

Each reports the seconds from the kill to the standby holding the Lease and to the exact outcome.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from collections.abc import Awaitable, Iterable, Sequence
from pathlib import Path
from typing import Any

from benchmarks.chaos import appsets, claims, leaders
from benchmarks.chaos.pipeline import POSTGRES, ChaosPipeline, Member
from benchmarks.fleet.hub_cluster import start_hub
from benchmarks.progress import Progress
from controllers import contract
from kubeio import objects
from kubeio.rest import MERGE_PATCH, KubeRest
from localinfra import kube, kubectl, platform, postgres, process
from provisioner import catalog, operator
from trust.identity import Identity

#: the names ``--faults`` takes
CONTROLLERS, PROVISIONER = "controllers-leader", "provisioner-leader"
#: hub writes in flight at once
WRITES_AT_ONCE = 16
#: seconds a standby may take to hold the Lease (a 15 s lease, and a loaded machine)
TAKEOVER_TIMEOUT = 120.0


@dataclasses.dataclass
class LeaderHub:
    """The hub the operators' replicas run on, and what a user reads there and in Maestro."""

    cluster: kube.Cluster
    rest: KubeRest
    reads: leaders.HubReads

    async def close(self) -> None:
        await self.rest.close()


async def start(pipeline: ChaosPipeline, progress: Progress) -> LeaderHub:
    progress("[bench] starting etcd and a hub kube-apiserver (Argo CD's and the provisioner's CRDs) ...")
    cluster = await start_hub(pipeline.env)
    rest = KubeRest.from_kubeconfig(cluster.kubeconfig)
    await operator.install(objects.Objects(rest), catalog.COMPOSITIONS_DIR / "worker-cluster")
    dsn = postgres.Postgres.from_env(pipeline.env, POSTGRES).dsn("maestro")
    reads = leaders.HubReads(rest, pipeline.live_address, pipeline.security.credentials(), dsn)
    return LeaderHub(cluster, rest, reads)


@dataclasses.dataclass
class Figures:
    """What a strike measured, as ``bench chaos`` reports it."""

    workload: str
    struck_with: str = "-"
    takeover: float | None = None
    last_call_to_exact: float | None = None
    fault_to_exact: float | None = None
    verdict: str = "exact"

    def row(self) -> dict[str, Any]:
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 1)

        return {
            "workload": self.workload,
            "struck with": self.struck_with,
            "fault to recovered s": rounded(self.takeover),
            "last call to exact s": rounded(self.last_call_to_exact),
            "fault to exact s": rounded(self.fault_to_exact),
            "verdict": self.verdict,
        }


async def strike(
    name: str, pipeline: ChaosPipeline, hub: LeaderHub, works: int, timeout: float, progress: Progress
) -> dict[str, Any]:
    """The fault ``name`` (`CONTROLLERS` or `PROVISIONER`) struck; its row of the report."""
    play = _controllers_leader if name == CONTROLLERS else _provisioner_leader
    figures = Figures("-")
    try:
        await play(pipeline, hub, works, timeout, progress, figures)
    except Exception as exc:  # the next fault still runs; the logs are kept
        figures.verdict = f"failed: {exc}" if isinstance(exc, AssertionError) else f"failed: {exc!r}"
    progress(f"[bench] {name}: {figures.verdict}")
    return figures.row()


async def _replicas(pipeline: ChaosPipeline, name: str, argv: Sequence[str]) -> list[Member]:
    """Two replicas of ``argv``, each once it competes for the Lease."""
    replicas = []
    for i in (1, 2):
        member = f"{name}-{i}"
        pipeline.env.add_process(process.spawn(member, argv, pipeline.root / f"{member}.log"))
        replicas.append(Member(pipeline.env, member))
    for r in replicas:
        record = pipeline.env.processes[r.name]
        competing = functools.partial(_competes, Path(record.log))
        await asyncio.to_thread(
            process.wait_until,
            record,
            competing,
            timeout=platform.START_TIMEOUT,
            what="competing for its Lease",
        )
    return replicas


def _competes(log: Path) -> bool:
    return leaders.identity_in(log) is not None


async def _roles(hub: LeaderHub, lease: str, replicas: list[Member]) -> tuple[Member, Member]:
    """The replica holding ``lease`` and the standby, once one holds it."""
    by_name = {r.name: r for r in replicas}
    identities = {r.name: leaders.identity_in(Path(r.env.processes[r.name].log)) for r in replicas}

    async def one_leads() -> tuple[bool, Any]:
        roles = leaders.leader_and_standby(await hub.reads.holder(lease), identities)
        return roles is not None, roles

    leader, standby = await leaders.until("a replica to lead", one_leads, timeout=TAKEOVER_TIMEOUT)
    return by_name[leader], by_name[standby]


async def _takeover(hub: LeaderHub, lease: str, standby: Member, killed: float) -> float:
    identity = leaders.identity_in(Path(standby.env.processes[standby.name].log))

    async def standby_leads() -> tuple[bool, Any]:
        holder = await hub.reads.holder(lease)
        return holder == identity, holder

    await leaders.until("the standby to hold the Lease", standby_leads, timeout=TAKEOVER_TIMEOUT)
    return time.monotonic() - killed


async def _all(calls: Iterable[Awaitable[Any]]) -> None:
    """Await every call, `WRITES_AT_ONCE` at a time."""
    gate = asyncio.Semaphore(WRITES_AT_ONCE)

    async def one(call: Awaitable[Any]) -> None:
        async with gate:
            await call

    await asyncio.gather(*(one(c) for c in calls))


def _stop(pipeline: ChaosPipeline, replicas: Sequence[Member]) -> None:
    for r in replicas:
        pipeline.env.stop_process(r.name)


async def _controllers_leader(
    pipeline: ChaosPipeline, hub: LeaderHub, works: int, timeout: float, progress: Progress, out: Figures
) -> None:
    run = leaders.run_id()
    plan = appsets.Plan.of(
        run, appsets.count_for(works, len(pipeline.clusters)), [c.name for c in pipeline.clusters]
    )
    out.workload = f"{len(plan.names)} ApplicationSets x {len(plan.clusters)} clusters"
    secrets = [appsets.run_secret(c, run) for c in plan.clusters]
    await asyncio.to_thread(kubectl.apply, hub.cluster.kubeconfig, secrets, field_manager="bench")
    tls = pipeline.security.tls(Identity.source(contract.MAESTRO_SOURCE))
    assert tls is not None, "bench chaos runs secure"
    lease = f"controllers-{run}"
    argv = leaders.controllers_argv(hub.cluster.kubeconfig, pipeline.addresses[0], tls, lease)
    replicas = await _replicas(pipeline, f"controllers-{run}", argv)
    try:
        leader, standby = await _roles(hub, lease, replicas)
        progress(f"[bench] {CONTROLLERS}: {leader.name} leads; {out.workload} ...")
        await _all(
            [
                hub.rest.request("POST", appsets.APPSETS, body=appsets.application_set(n, run, "apps"))
                for n in plan.names
            ]
        )
        work_ids: set[str] = set()
        total = plan.applications

        async def a_third_served() -> tuple[bool, int]:
            served = sum((await hub.reads.works(plan.prefix, work_ids)).values())
            return served >= total // 3, served

        served = await leaders.until(
            f"{total // 3} works in Maestro", a_third_served, timeout=timeout, period=1
        )
        await _all(
            [
                hub.rest.request(
                    "PATCH", f"{appsets.APPSETS}/{n}", body=appsets.CHANGE, content_type=MERGE_PATCH
                )
                for i, n in enumerate(plan.names)
                if appsets.changed(i)
            ]
        )
        await asyncio.to_thread(leader.kill_hard)
        killed = time.monotonic()
        out.struck_with = f"{served}/{total} works in Maestro"
        progress(f"[bench] {CONTROLLERS}: {leader.name} killed -9 with {out.struck_with}")
        await _all(
            [
                hub.rest.request("DELETE", f"{appsets.APPSETS}/{n}")
                for i, n in enumerate(plan.names)
                if appsets.deleted(i)
            ]
        )
        last_call = time.monotonic()
        out.takeover = await _takeover(hub, lease, standby, killed)
        progress(f"[bench] {CONTROLLERS}: {standby.name} leads {out.takeover:.1f}s after the kill")

        async def exact() -> tuple[bool, str]:
            snapshot = appsets.Snapshot(
                await hub.reads.works(plan.prefix, work_ids),
                await hub.reads.appset_names(),
                await hub.reads.applications(run),
                await asyncio.to_thread(_cluster_applications, pipeline, run),
                await hub.reads.outbox(),
            )
            left = appsets.pending(plan, snapshot)
            return not left, f"{len(left)} pending, e.g. {left[:3]}"

        await leaders.until("the exact outcome", exact, timeout=timeout, period=1)
        done = time.monotonic()
        out.last_call_to_exact, out.fault_to_exact = done - last_call, done - killed
        twice = appsets.sent_twice(await asyncio.to_thread(pipeline.sent_statuses, work_ids))
        assert not twice, f"status sequence ids sent twice: {dict(list(twice.items())[:3])}"
    finally:
        _stop(pipeline, replicas)


def _cluster_applications(pipeline: ChaosPipeline, run: str) -> dict[str, dict[str, list[Any]]]:
    """The run's Applications each simulated cluster holds, by name."""
    return {c: appsets.applications_in(view.refresh().objects, run) for c, view in pipeline.views.items()}


async def _provisioner_leader(
    pipeline: ChaosPipeline, hub: LeaderHub, works: int, timeout: float, progress: Progress, out: Figures
) -> None:
    run = leaders.run_id()
    count = claims.count_for(works)
    names = [f"c-{run}-{i:04d}" for i in range(count)]
    namespace = f"chaos-claims-{run}"
    path = claims.path(namespace)
    out.workload = f"{count} ClusterClaims"
    hub_objects = objects.Objects(hub.rest)
    await hub_objects.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}, field_manager="bench"
    )
    tls = pipeline.security.tls(Identity.admin(operator.MAESTRO_SOURCE))
    assert tls is not None, "bench chaos runs secure"
    lease = f"provisioner-{run}"
    argv = leaders.provisioner_argv(
        hub.cluster.kubeconfig,
        pipeline.addresses[0],
        pipeline.brokers.kafka.bootstrap,
        pipeline.names.prefix,
        tls.ca.parent,
        pipeline.env.path("pki"),
        lease,
    )
    replicas = await _replicas(pipeline, f"provisioner-{run}", argv)
    try:
        leader, standby = await _roles(hub, lease, replicas)
        progress(f"[bench] {PROVISIONER}: {leader.name} leads; applying {count} ClusterClaims ...")
        await _all([hub_objects.apply(claims.claim(n, namespace, run), field_manager="bench") for n in names])

        async def some_ready() -> tuple[bool, int]:
            ready = len((await hub.reads.claims(path, run)).ready)
            return ready >= count // 3, ready

        # Polled often: simulated clusters come up fast, and the kill must find claims in flight.
        ready = await leaders.until(f"{count // 3} claims Ready", some_ready, timeout=timeout, period=0.2)
        await asyncio.to_thread(leader.kill_hard)
        killed = time.monotonic()
        out.struck_with = f"{ready}/{count} claims Ready"
        progress(f"[bench] {PROVISIONER}: {leader.name} killed -9 with {out.struck_with}")
        out.takeover = await _takeover(hub, lease, standby, killed)
        progress(f"[bench] {PROVISIONER}: {standby.name} leads {out.takeover:.1f}s after the kill")

        async def provisioned() -> tuple[bool, str]:
            left = claims.pending_provisioned(names, await hub.reads.claims(path, run))
            return not left, "; ".join(left)

        await leaders.until("every claim Ready, once", provisioned, timeout=timeout, period=1)
        out.fault_to_exact = time.monotonic() - killed
        progress(f"[bench] {PROVISIONER}: every claim Ready once; deleting them ...")
        await _all([hub.rest.request("DELETE", f"{path}/{n}") for n in names])
        deleting = time.monotonic()

        async def gone() -> tuple[bool, str]:
            left = claims.pending_gone(await hub.reads.claims(path, run))
            return not left, "; ".join(left)

        await leaders.until("the claims and what they made gone", gone, timeout=timeout, period=1)
        out.last_call_to_exact = time.monotonic() - deleting
    finally:
        _stop(pipeline, replicas)
