"""``fleetplane bench pipeline``: the Maestro pipeline under load, on real PostgreSQL and Kafka.

The server runs as its own process (so its memory is its own); simulated agents (the real agent
code, in-memory appliers) and the load generator share this process. Every hop is secured as in
production unless ``insecure`` (``maestro_setup.Security``). Measures creates/s accepted and end
to end, create -> applied and applied -> status latencies (also at a paced 100 creates/s), the
time to list every bundle, the server's memory, and the bytes each agent read from Kafka against
the total; and, for ``--report``, what was sent, applied and stored each second with the
latencies of each second.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import maestro_setup, proc_sample
from benchmarks.progress import Progress
from benchmarks.simulated import SimulatedFleet
from benchmarks.timeline import Timeline, latency_per_second, per_second, percentile_ms
from localinfra import process
from localinfra.environment import Environment
from maestro.api import bundles, consumers
from maestro.client import MaestroClient
from maestro.transport import layout
from maestro.transport.connection import KafkaSettings


@dataclass(frozen=True)
class PipelineSettings:
    clusters: int
    works_per_cluster: int
    #: creates in flight at once
    concurrency: int = 128
    paced_rate: float = 100.0
    paced_seconds: float = 10.0
    #: PostgreSQL with fsync (without: faster, not durable)
    durable: bool = True
    replicas: int = 1
    batch_publish: bool = False
    insecure: bool = False


@dataclass
class PipelineResult:
    clusters: int
    works_per_cluster: int
    total: int
    #: server processes sharing the database and Kafka; RSS figures are their sum
    server_replicas: int = 1
    #: creates sent with fleetplane's PublishBatch (as the hub controllers do), not one Publish each
    batch_publish: bool = False
    #: plaintext and no authorization (--insecure), instead of TLS and per-call authorization
    insecure: bool = False
    create_seconds: float = 0.0
    creates_per_s: float = 0.0
    end_to_end_seconds: float = 0.0
    end_to_end_per_s: float = 0.0
    create_to_applied_p50_ms: float = 0.0
    create_to_applied_p99_ms: float = 0.0
    applied_to_status_p50_ms: float = 0.0
    applied_to_status_p99_ms: float = 0.0
    paced_rate: float = 0.0
    paced_create_to_applied_p50_ms: float = 0.0
    paced_create_to_applied_p99_ms: float = 0.0
    listed: int = 0
    list_seconds: float = 0.0
    #: the same list without specs (what a status reader asks for), and without statuses either
    #: (what the hub controllers' periodic safety nets ask for)
    list_without_spec_seconds: float = 0.0
    list_without_spec_or_status_seconds: float = 0.0
    server_rss_mb: float = 0.0
    server_peak_rss_mb: float = 0.0
    agent_bytes_mean: float = 0.0
    agent_bytes_max: int = 0
    spec_bytes_total: int = 0
    foreign_events_read: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


#: the rates compared between secure and insecure runs (higher is better)
PRICED_RATES = ("creates_per_s", "end_to_end_per_s")


def guestbook_application(cluster: str, index: int) -> dict[str, Any]:
    """A realistic work: the Argo CD Application of a guestbook instance on a worker cluster."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": f"guestbook-{index}",
            "namespace": "argocd",
            "labels": {"fleetplane.io/cluster": cluster, "app": "guestbook"},
        },
        "spec": {
            "project": "default",
            "source": {
                "repoURL": "https://github.com/argoproj/argocd-example-apps.git",
                "path": "guestbook",
                "targetRevision": "HEAD",
            },
            "destination": {"server": "https://kubernetes.default.svc", "namespace": f"guestbook-{index}"},
            "syncPolicy": {
                "automated": {"prune": True, "selfHeal": True},
                "syncOptions": ["CreateNamespace=true"],
            },
        },
    }


def work_bundle(cluster: str, index: int) -> bundles.ManifestBundle:
    return bundles.ManifestBundle(
        manifests=[guestbook_application(cluster, index)],
        delete_option={"propagationPolicy": "Foreground"},
        manifest_configs=[
            {
                "resourceIdentifier": {
                    "group": "argoproj.io",
                    "resource": "applications",
                    "name": f"guestbook-{index}",
                    "namespace": "argocd",
                },
                "feedbackRules": [
                    {
                        "type": "JSONPaths",
                        "jsonPaths": [
                            {"name": "syncStatus", "path": ".status.sync.status"},
                            {"name": "healthStatus", "path": ".status.health.status"},
                        ],
                    }
                ],
                "updateStrategy": {"type": "ServerSideApply"},
            }
        ],
    )


class _Clock:
    """Send / applied / status-visible instants per work, and when each phase began, on the event
    loop's clock."""

    def __init__(self) -> None:
        self.sent: dict[str, float] = {}
        self.applied: dict[str, float] = {}
        self.status: dict[str, float] = {}
        self.phases: dict[str, float] = {}

    def on_applied(self, rid: str, bundle: Mapping[str, Any], at: float) -> None:
        self.applied.setdefault(rid, at)

    def create_to_applied(self, rids: Sequence[str]) -> list[float]:
        return [self.applied[r] - self.sent[r] for r in rids]

    def timeline(self) -> Timeline:
        """Per second from the first phase: works sent, applied and with their status stored, and
        the latencies of those applied and stored in it."""
        start = min(self.phases.values())
        applied = ((at, at - self.sent[r]) for r, at in self.applied.items() if r in self.sent)
        stored = ((at, at - self.applied[r]) for r, at in self.status.items() if r in self.applied)
        return Timeline(
            phases={name: round(at - start, 3) for name, at in self.phases.items()},
            rates={
                "sent": per_second(self.sent.values(), start),
                "applied": per_second(self.applied.values(), start),
                "status stored": per_second(self.status.values(), start),
            },
            latencies={
                "create -> applied": latency_per_second(applied, start),
                "applied -> status": latency_per_second(stored, start),
            },
        )


def _rss_mb(pid: int) -> tuple[float, float]:
    """Resident now, and its high-water mark."""
    status = proc_sample.PROC / str(pid) / "status"
    return proc_sample.field_mb(status, "VmRSS"), proc_sample.field_mb(status, "VmHWM")


@dataclass(frozen=True)
class _Stage:
    """What a run measures: the servers, how to reach them, and the simulated agents' Kafka."""

    servers: list[tuple[process.ProcessRecord, str]]
    security: maestro_setup.Security
    fleet_kafka: KafkaSettings
    names: layout.Layout


async def _timed_list(
    client: MaestroClient, *, with_spec: bool = True, with_status: bool = True
) -> tuple[float, int]:
    """Seconds to list every bundle (pages of 500), and how many were listed."""
    started = time.perf_counter()
    listed, _ = await client.list_summaries(page_size=500, with_spec=with_spec, with_status=with_status)
    return time.perf_counter() - started, len(listed)


async def run(settings: PipelineSettings, progress: Progress) -> tuple[PipelineResult, Timeline]:
    result = PipelineResult(
        settings.clusters,
        settings.works_per_cluster,
        settings.clusters * settings.works_per_cluster,
        settings.replicas,
        batch_publish=settings.batch_publish,
        insecure=settings.insecure,
    )
    root = Path(tempfile.mkdtemp(prefix="fleetplane-bench-"))
    env = Environment(root / "env")
    finished = False
    try:
        pg, kf, security = maestro_setup.start_stores(
            env, progress, insecure=settings.insecure, durable=settings.durable, kafka_heap="1g"
        )
        servers, names = await maestro_setup.start_servers(env, pg, kf, root, settings.replicas, security)
        pids = ", ".join(str(record.pid) for record, _ in servers)
        progress(
            f"[bench] {settings.replicas} server replica(s) up (pid {pids}); "
            f"registering {settings.clusters} clusters ..."
        )
        fleet = await maestro_setup.fleet_kafka(security, kf, names)
        timeline = await _measure(result, _Stage(servers, security, fleet, names), settings, progress)
        finished = True
    finally:
        maestro_setup.end_run(env, root, keep_logs=not finished, report=progress)
    return result, timeline


async def _measure(
    result: PipelineResult, stage: _Stage, settings: PipelineSettings, progress: Progress
) -> Timeline:
    clock = _Clock()
    gate = asyncio.Semaphore(settings.concurrency)
    async with contextlib.AsyncExitStack() as stack:
        # Creates are spread over the replicas, as a load balancer in front of them would.
        replicas = [
            await stack.enter_async_context(
                MaestroClient(
                    address,
                    source="bench",
                    credentials=stage.security.credentials(),
                    batch_publish=result.batch_publish,
                )
            )
            for _, address in stage.servers
        ]
        client = replicas[0]

        async def register(i: int) -> consumers.Consumer:
            async with gate:
                return await client.create_consumer(f"cluster-{i:05d}")

        registered = await asyncio.gather(*(register(i) for i in range(result.clusters)))
        fleet = SimulatedFleet(stage.fleet_kafka, stage.names, on_applied=clock.on_applied)
        await fleet.add(list(registered))
        fleet.start()
        token = (await client.list(page_size=1))[1]
        watcher = asyncio.create_task(_watch(client, token, clock))
        await _bulk(result, replicas, registered, clock, gate, progress)
        await _paced(result, replicas, registered, clock, settings, progress)

        progress("[bench] listing every bundle (whole, without specs, without specs or statuses) ...")
        clock.phases["list"] = asyncio.get_running_loop().time()
        result.list_seconds, result.listed = await _timed_list(client)
        result.list_without_spec_seconds, _ = await _timed_list(client, with_spec=False)
        result.list_without_spec_or_status_seconds, _ = await _timed_list(
            client, with_spec=False, with_status=False
        )
        memory = [_rss_mb(record.pid) for record, _ in stage.servers]
        result.server_rss_mb = sum(rss for rss, _ in memory)
        result.server_peak_rss_mb = sum(peak for _, peak in memory)
        agents = list(fleet.agents.values())
        per_agent = [a.stats.bytes_read for a in agents]
        result.agent_bytes_mean = statistics.fmean(per_agent)
        result.agent_bytes_max = max(per_agent)
        result.spec_bytes_total = sum(per_agent)
        result.foreign_events_read = sum(a.stats.rejected for a in agents)
        watcher.cancel()
        await fleet.stop()
    return clock.timeline()


async def _bulk(
    result: PipelineResult,
    replicas: Sequence[MaestroClient],
    registered: Sequence[consumers.Consumer],
    clock: _Clock,
    gate: asyncio.Semaphore,
    progress: Progress,
) -> None:
    """Every work at once (``gate`` at a time), until every status is stored."""
    loop = asyncio.get_running_loop()

    async def create(cluster: str, index: int, replica: MaestroClient) -> None:
        rid = uuid.uuid4()
        async with gate:
            clock.sent[str(rid)] = loop.time()
            await replica.apply(cluster, rid, work_bundle(cluster, index))

    progress(f"[bench] creating {result.total} works ({result.works_per_cluster} per cluster) ...")
    progress.step("works with their status stored", result.total)
    started = clock.phases["bulk"] = loop.time()
    counting = asyncio.create_task(_count(clock, result.total, progress))
    jobs = [
        create(c.name, i, replicas[(i + j) % len(replicas)])
        for i in range(result.works_per_cluster)
        for j, c in enumerate(registered)
    ]
    for chunk in range(0, len(jobs), 10_000):
        await asyncio.gather(*jobs[chunk : chunk + 10_000])
    result.create_seconds = loop.time() - started
    result.creates_per_s = result.total / result.create_seconds
    await _until(lambda: len(clock.status) >= result.total, 1800)
    result.end_to_end_seconds = max(clock.status.values()) - started
    result.end_to_end_per_s = result.total / result.end_to_end_seconds
    counting.cancel()
    bulk = list(clock.sent)
    latencies = clock.create_to_applied(bulk)
    result.create_to_applied_p50_ms = percentile_ms(latencies, 0.5)
    result.create_to_applied_p99_ms = percentile_ms(latencies, 0.99)
    deltas = [clock.status[r] - clock.applied[r] for r in bulk if r in clock.applied]
    result.applied_to_status_p50_ms = percentile_ms(deltas, 0.5)
    result.applied_to_status_p99_ms = percentile_ms(deltas, 0.99)


async def _paced(
    result: PipelineResult,
    replicas: Sequence[MaestroClient],
    registered: Sequence[consumers.Consumer],
    clock: _Clock,
    settings: PipelineSettings,
    progress: Progress,
) -> None:
    """Creates at ``settings.paced_rate`` a second, each timed to its apply."""
    loop = asyncio.get_running_loop()
    rate = settings.paced_rate
    progress(f"[bench] paced phase: {rate:.0f} creates/s for {settings.paced_seconds:.0f}s ...")
    paced: list[str] = []
    count = int(rate * settings.paced_seconds)
    progress.step("paced works sent", count)
    paced_start = clock.phases["paced"] = loop.time()
    for i in range(count):
        await asyncio.sleep(max(0.0, paced_start + i / rate - loop.time()))
        rid = uuid.uuid4()
        cluster = registered[i % len(registered)].name
        clock.sent[str(rid)] = loop.time()
        paced.append(str(rid))
        await replicas[i % len(replicas)].apply(cluster, rid, work_bundle(cluster, 10_000 + i))
        progress.advance(i + 1)
    await _until(lambda: all(r in clock.applied for r in paced), 300)
    result.paced_rate = rate
    result.paced_create_to_applied_p50_ms = percentile_ms(
        [clock.applied[r] - clock.sent[r] for r in paced], 0.5
    )
    result.paced_create_to_applied_p99_ms = percentile_ms(
        [clock.applied[r] - clock.sent[r] for r in paced], 0.99
    )


async def _watch(client: MaestroClient, token: str, clock: _Clock) -> None:
    loop = asyncio.get_running_loop()
    async for change in client.watch(token):
        clock.status.setdefault(change.resource_id, loop.time())


async def _count(clock: _Clock, total: int, progress: Progress) -> None:
    while True:
        await asyncio.sleep(1)
        progress.advance(
            len(clock.status),
            f"[bench]   sent {len(clock.sent)}/{total}, applied {len(clock.applied)}, "
            f"status stored {len(clock.status)}",
        )


async def _until(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not done within {timeout:.0f}s")
        await asyncio.sleep(0.1)
