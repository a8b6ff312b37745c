"""``bench fleet``'s run: the platform started in a temporary environment, then each phase timed."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import maestro_setup
from benchmarks.fleet import argocd_appset, report
from benchmarks.fleet.cpu import ProgressCpu, cpu_now, phase_cpu
from benchmarks.fleet.hub_cluster import Hub, controllers_identity, start_hub
from benchmarks.fleet.report import FleetResult
from benchmarks.fleet.sampler import AppliedRevisions, HubApps, Sampler
from benchmarks.fleet.workload import NAMESPACE, PHASES, REVISIONS, application_set, cluster_name
from benchmarks.progress import Progress
from benchmarks.simulated import SimulatedFleet
from benchmarks.timeline import Timeline
from controllers import contract
from kubeio.rest import KubeRest
from localinfra import hub_argocd, kafka, kube, platform, postgres, process
from localinfra.environment import Environment
from maestro.api import consumers
from maestro.client import MaestroClient
from maestro.transport import layout
from maestro.transport.connection import KafkaSettings
from trust.identity import Identity


@dataclass(frozen=True)
class StatusWrites:
    """How the controllers under test write hub statuses (their ``--write-*`` options)."""

    rate: float = 200.0
    concurrency: int = 16


@dataclass(frozen=True)
class FleetSettings:
    """What a run measures (``fleetplane bench fleet``'s options)."""

    clusters: int
    apps_per_cluster: int
    #: seconds the simulated Argo CD takes to sync an Application
    argocd_sync_delay: float = 1.0
    #: seconds between the simulated agents' full status re-reads
    refresh_seconds: float = 60.0
    #: the longest wait of each phase
    phase_timeout: float = 1800.0
    writes: StatusWrites = StatusWrites()
    phases: frozenset[str] = PHASES
    insecure: bool = False
    #: argocd-server on the hub (watching every Application), the controllers writing each
    #: mirror's resource tree into its Redis
    hub_argocd: bool = False
    #: before fleetplane's controllers start, Argo CD's ApplicationSet controller creates the same
    #: Applications on the same hub (``argocd_appset``)
    compare_argocd_appset: bool = False


@dataclass(frozen=True)
class _Stage:
    """The platform a run measures, once started."""

    env: Environment
    root: Path
    hub: Hub
    hub_cluster: kube.Cluster
    address: str
    security: maestro_setup.Security
    fleet_kafka: KafkaSettings
    names: layout.Layout
    #: when the run began (monotonic clock): its setup is timed from here
    started: float
    #: further arguments of ``fleetplane controllers run``
    controllers_extra: tuple[str, ...] = ()


async def run(settings: FleetSettings, progress: Progress) -> tuple[FleetResult, Timeline]:
    total = settings.clusters * settings.apps_per_cluster
    result = FleetResult(settings.clusters, settings.apps_per_cluster, total, insecure=settings.insecure)
    root = Path(tempfile.mkdtemp(prefix="fleetplane-bench-fleet-"))
    env = Environment(root / "env")
    started = time.monotonic()
    finished = False
    try:
        progress("[bench] starting etcd, the hub kube-apiserver, PostgreSQL and Kafka ...")
        hub_cluster = await start_hub(env)
        pg = await asyncio.to_thread(postgres.start, env)
        secure = not settings.insecure
        kf = await asyncio.to_thread(functools.partial(kafka.start, env, heap="1g", secure=secure))
        security = maestro_setup.Security(env, insecure=settings.insecure)
        _server, address, names = await maestro_setup.start_server(env, pg, kf, root, security)
        fleet_kafka = await maestro_setup.fleet_kafka(security, kf, names)
        extra: tuple[str, ...] = ()
        if settings.hub_argocd:
            progress("[bench] starting argocd-server and its Redis on the hub ...")
            server = await asyncio.to_thread(hub_argocd.start, env, hub_cluster.kubeconfig)
            extra = tuple(hub_argocd.controllers_args(server))
        hub = Hub(hub_cluster, env)
        try:
            stage = _Stage(env, root, hub, hub_cluster, address, security, fleet_kafka, names, started, extra)
            timeline = await _measure(result, stage, settings, progress)
            result.finish_rates()
        finally:
            hub.close()
        finished = True
    finally:
        result.peak_rss_mb = report.peak_rss(env) | result.peak_rss_mb
        maestro_setup.end_run(env, root, keep_logs=bool(result.notes) or not finished, report=progress)
    return result, timeline


async def _measure(
    result: FleetResult, stage: _Stage, settings: FleetSettings, progress: Progress
) -> Timeline:
    credentials = stage.security.credentials()
    async with MaestroClient(stage.address, source="bench-observer", credentials=credentials) as client:
        progress(f"[bench] registering {settings.clusters} clusters in Maestro and on the hub ...")
        registered = await _register(client, stage.hub, settings.clusters)
        if settings.compare_argocd_appset:
            result.argocd_appset = await argocd_appset.measure(
                stage.env,
                stage.hub_cluster,
                stage.hub,
                settings.apps_per_cluster,
                result.total,
                settings.phase_timeout,
                progress,
            )
        applied = AppliedRevisions()
        fleet = SimulatedFleet(
            stage.fleet_kafka,
            stage.names,
            argocd_sync_delay=settings.argocd_sync_delay,
            on_applied=applied.applied,
        )
        await fleet.add(registered)
        fleet.start()
        refresher = asyncio.create_task(_refresh_forever(fleet, settings.refresh_seconds, progress))
        controllers = await _start_controllers(stage, settings.writes)
        hub_apps = HubApps(KubeRest.from_kubeconfig(stage.hub_cluster.kubeconfig))
        watching = asyncio.create_task(hub_apps.run())
        async with asyncio.timeout(60):
            await hub_apps.listed.wait()
        sampler = Sampler(client, hub_apps, applied, progress, read_cpu=lambda: cpu_now(stage.env))
        sampling = asyncio.create_task(sampler.run())
        result.setup_seconds = round(time.monotonic() - stage.started, 1)
        writes_before = await asyncio.to_thread(stage.hub.writes)
        writes_started = time.monotonic()
        phases: dict[str, float] = {}
        try:
            phases["create"] = await _create(result, stage, sampler, settings, progress)
            _check_alive(controllers, result, "create")
            result.skipped_phases = sorted(PHASES - settings.phases)
            if "update" in settings.phases:
                phases["update"] = await _update(result, stage, sampler, settings, progress)
                _check_alive(controllers, result, "update")
            if "delete" in settings.phases:
                phases["delete"] = await _delete(result, stage, sampler, settings, progress)
        finally:
            with contextlib.suppress(Exception):
                await _count_writes(result, stage.hub, writes_before, writes_started)
            result.peak_rss_mb = report.peak_rss(stage.env)
            for task in (sampling, watching, refresher):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await hub_apps.rest.close()
            stage.env.stop_process("controllers")
            await fleet.stop()
    return report.timeline(sampler.history, phases, hub_apps.latency.finished, writes_started)


async def _register(client: MaestroClient, hub: Hub, clusters: int) -> list[consumers.Consumer]:
    """Every cluster a Maestro consumer and an inventory Secret on the hub."""
    gate = asyncio.Semaphore(64)

    async def register(i: int) -> consumers.Consumer:
        async with gate:
            return await client.create_consumer(cluster_name(i))

    registered, _ = await asyncio.gather(
        asyncio.gather(*(register(i) for i in range(clusters))),
        asyncio.to_thread(hub.create_secrets, [cluster_name(i) for i in range(clusters)]),
    )
    return list(registered)


async def _start_controllers(stage: _Stage, writes: StatusWrites) -> process.ProcessRecord:
    """``fleetplane controllers run`` as the hub's ServiceAccount, not waited for: the rest of the
    setup goes on while it starts."""
    kubeconfig = await controllers_identity(stage.hub_cluster, stage.root)
    args = [
        "controllers",
        "run",
        "--kubeconfig",
        str(kubeconfig),
        "--maestro",
        stage.address,
        *stage.security.client_args(Identity.source(contract.MAESTRO_SOURCE)),
        "--inventory-namespace",
        NAMESPACE,
        "--write-rate",
        str(writes.rate),
        "--write-burst",
        str(int(2 * writes.rate)),
        "--write-concurrency",
        str(writes.concurrency),
        "--log-level",
        "warning",
        *stage.controllers_extra,
    ]
    return platform.launch(stage.env, "controllers", args, stage.root / "controllers.log")


async def _create(
    result: FleetResult, stage: _Stage, sampler: Sampler, settings: FleetSettings, progress: Progress
) -> float:
    """Every ApplicationSet applied, until every hub Application is Synced/Healthy; when it began."""
    total = result.total
    progress(
        f"[bench] applying {settings.apps_per_cluster} ApplicationSets x {settings.clusters} clusters "
        f"= {total} Applications ..."
    )
    sampler.begin("create", total)
    cpu_before = await asyncio.to_thread(cpu_now, stage.env)
    sampler.cpu_by_progress = by_progress = ProgressCpu(total, cpu_before)
    t0 = time.monotonic()
    await _apply_all(stage.hub, [application_set(i) for i in range(settings.apps_per_cluster)])
    elapsed = await sampler.until(lambda s: s.apps >= total and s.ready >= total, t0, settings.phase_timeout)
    result.create_seconds = _round(elapsed)
    sampler.cpu_by_progress = None
    cpu_after = await asyncio.to_thread(cpu_now, stage.env)
    _record_cpu(result, "create", cpu_before, cpu_after)
    by_progress.add(sampler.latest.ready, cpu_after)
    result.create_cpu_ms_by_progress = by_progress.per_application()
    sampler.latest = await sampler.sample(works_too=True)
    result.create_reached = sampler.reached()
    if elapsed is None:
        result.notes.append(f"create: not all Synced/Healthy within {settings.phase_timeout:.0f}s")
    return t0


async def _update(
    result: FleetResult, stage: _Stage, sampler: Sampler, settings: FleetSettings, progress: Progress
) -> float:
    """A ``targetRevision`` change in every ApplicationSet, until every agent applied it and every
    hub Application is Synced/Healthy at a new revision; when it began."""
    total, timeout = result.total, settings.phase_timeout
    old_revisions = sampler.apps.revisions()
    sampler.apps.compare_with(old_revisions)
    if not any(old_revisions.values()):
        result.notes.append("update: hub Applications carry no sync.revision; timed works only")
    appsets = settings.apps_per_cluster
    progress(f"[bench] changing targetRevision to {REVISIONS[1]} in all {appsets} ApplicationSets ...")
    sampler.begin("update", total)
    sampler.target_revision = REVISIONS[1]
    cpu_before = await asyncio.to_thread(cpu_now, stage.env)
    t0 = time.monotonic()
    await _apply_all(stage.hub, [application_set(i, REVISIONS[1]) for i in range(appsets)])
    works_done = await sampler.until(lambda s: s.works_new >= total, t0, timeout)
    result.update_works_seconds = _round(works_done)
    if any(old_revisions.values()):
        remaining = max(1.0, timeout - (works_done or timeout))
        elapsed = await sampler.until(lambda s: s.moved >= total, t0, remaining)
        result.update_seconds = _round(elapsed)
    _record_cpu(result, "update", cpu_before, await asyncio.to_thread(cpu_now, stage.env))
    result.update_reached = sampler.reached()
    if result.update_seconds is None:
        result.notes.append("update: not every hub Application reached the new revision in time")
    return t0


async def _delete(
    result: FleetResult, stage: _Stage, sampler: Sampler, settings: FleetSettings, progress: Progress
) -> float:
    """Every ApplicationSet deleted, until no work and no hub Application is left; when it began."""
    appsets = settings.apps_per_cluster
    progress(f"[bench] deleting all {appsets} ApplicationSets ...")
    sampler.begin("delete", result.total)
    cpu_before = await asyncio.to_thread(cpu_now, stage.env)
    t0 = time.monotonic()
    names = [application_set(i)["metadata"]["name"] for i in range(appsets)]
    await asyncio.gather(*(asyncio.to_thread(stage.hub.delete_application_set, name) for name in names))
    elapsed = await sampler.until(lambda s: s.works == 0 and s.apps == 0, t0, settings.phase_timeout)
    result.delete_seconds = _round(elapsed)
    _record_cpu(result, "delete", cpu_before, await asyncio.to_thread(cpu_now, stage.env))
    result.delete_reached = sampler.reached()
    if elapsed is None:
        result.notes.append(f"delete: works or hub Applications remained after {settings.phase_timeout:.0f}s")
    return t0


async def _count_writes(result: FleetResult, hub: Hub, before: Mapping[str, int], since: float) -> None:
    """The hub API server's writes since ``before`` was read, by verb and per second."""
    after = await asyncio.to_thread(hub.writes)
    result.hub_writes_seconds = round(time.monotonic() - since, 1)
    result.hub_writes_by_verb = {v: after.get(v, 0) - before.get(v, 0) for v in sorted(after)}
    result.hub_writes = sum(result.hub_writes_by_verb.values())
    result.hub_writes_per_s = round(result.hub_writes / max(result.hub_writes_seconds, 1e-9), 1)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _record_cpu(
    result: FleetResult, phase: str, before: Mapping[str, float], after: Mapping[str, float]
) -> None:
    result.cpu_seconds[phase], result.cpu_ms_per_application[phase] = phase_cpu(before, after, result.total)


def _check_alive(record: process.ProcessRecord, result: FleetResult, phase: str) -> None:
    if not process.is_alive(record):
        result.notes.append(f"{phase}: the controllers exited:\n{process.log_tail(record.log)}")


async def _apply_all(hub: Hub, bodies: list[dict[str, Any]]) -> None:
    gate = asyncio.Semaphore(8)

    async def one(body: dict[str, Any]) -> None:
        async with gate:
            await asyncio.to_thread(hub.apply_application_set, body)

    await asyncio.gather(*(one(b) for b in bodies))


async def _refresh_forever(fleet: SimulatedFleet, period: float, progress: Progress) -> None:
    """The simulated Argo CD fills status in lazily on read: re-read, so agents report it."""
    while True:
        await asyncio.sleep(period)
        try:
            await fleet.refresh()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            progress(f"[bench]   (agent refresh failed: {type(exc).__name__}: {exc})")
