"""``fleetplane bench pipeline``: the Maestro pipeline under load, on real PostgreSQL and Kafka.

The server runs as its own process (so its memory is its own); simulated agents (the real agent
code, in-memory appliers) and the load generator share this process. Prints what it measures:
creates/s accepted and end to end, create -> applied and applied -> status latencies (also at a
paced 100 creates/s), the time to list every bundle, the server's memory, and the bytes each agent
read from Kafka against the total.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from localinfra import kafka, ports, postgres, process
from localinfra.environment import Environment
from maestro.api import bundles
from maestro.bench.simulated import SimulatedFleet
from maestro.client import MaestroClient
from maestro.transport import layout

Report = Callable[[str], None]


@dataclass
class PipelineResult:
    clusters: int
    works_per_cluster: int
    total: int
    #: server processes sharing the database and Kafka; RSS figures are their sum
    server_replicas: int = 1
    #: creates sent with fleetplane's PublishBatch (as the hub controllers do), not one Publish each
    batch_publish: bool = False
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


def _ms(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _rss_mb(pid: int) -> tuple[float, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


async def wait_healthy(address: str, record: process.ProcessRecord) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for _ in range(600):
            if not process.is_alive(record):
                raise RuntimeError("the Maestro server exited:\n" + process.log_tail(record.log))
            with contextlib.suppress(grpc.aio.AioRpcError):
                reply = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError("the Maestro server did not become healthy")


class _Clock:
    """Send / applied / status-visible instants per work, on the event loop's clock."""

    def __init__(self) -> None:
        self.sent: dict[str, float] = {}
        self.applied: dict[str, float] = {}
        self.status: dict[str, float] = {}

    def on_applied(self, rid: str, bundle: Mapping[str, Any], at: float) -> None:
        self.applied.setdefault(rid, at)


async def _timed_list(
    client: MaestroClient, *, with_spec: bool = True, with_status: bool = True
) -> tuple[float, int]:
    """Seconds to list every bundle (pages of 500), and how many were listed."""
    started = time.perf_counter()
    listed, _ = await client.list_messages(page_size=500, with_spec=with_spec, with_status=with_status)
    return time.perf_counter() - started, len(listed)


async def start_server(
    env: Environment, pg: postgres.Postgres, kf: kafka.Kafka, root: Path
) -> tuple[process.ProcessRecord, str, layout.Layout]:
    """A Maestro server process of the environment, on its own database and topic prefix, healthy."""
    servers, names = await start_servers(env, pg, kf, root, 1)
    return servers[0][0], servers[0][1], names


async def start_servers(
    env: Environment, pg: postgres.Postgres, kf: kafka.Kafka, root: Path, replicas: int
) -> tuple[list[tuple[process.ProcessRecord, str]], layout.Layout]:
    """``replicas`` Maestro server processes sharing one new database and topic prefix, healthy."""
    dsn = await asyncio.to_thread(pg.create_database, "maestro")
    names = layout.Layout(f"bench.{uuid.uuid4().hex[:8]}")
    cli = str(Path(sys.executable).parent / "fleetplane")
    servers = []
    for replica in range(replicas):
        port = ports.free_port()
        argv = [
            cli,
            "maestro",
            "server",
            "--dsn",
            dsn,
            "--kafka",
            kf.bootstrap,
            "--port",
            str(port),
            "--topic-prefix",
            names.prefix,
            "--server-id",
            f"bench-{replica}",
            "--log-level",
            "warning",
        ]
        name = "maestro-server" if replicas == 1 else f"maestro-server-{replica}"
        servers.append(
            (env.add_process(process.spawn(name, argv, root / f"{name}.log")), f"127.0.0.1:{port}")
        )
    for record, address in servers:
        await wait_healthy(address, record)
    return servers, names


async def run(
    clusters: int,
    works_per_cluster: int,
    *,
    concurrency: int = 128,
    paced_rate: float = 100.0,
    paced_seconds: float = 10.0,
    durable: bool = True,
    replicas: int = 1,
    batch_publish: bool = False,
    report: Report = print,
) -> PipelineResult:
    result = PipelineResult(
        clusters, works_per_cluster, clusters * works_per_cluster, replicas, batch_publish=batch_publish
    )
    root = Path(tempfile.mkdtemp(prefix="fleetplane-bench-"))
    env = Environment(root / "env")
    finished = False
    try:
        report("[bench] starting PostgreSQL and Kafka ...")
        pg = postgres.start(env, durable=durable)
        kf = kafka.start(env, heap="1g")
        servers, names = await start_servers(env, pg, kf, root, replicas)
        pids = ", ".join(str(record.pid) for record, _ in servers)
        report(f"[bench] {replicas} server replica(s) up (pid {pids}); registering {clusters} clusters ...")
        await _measure(result, servers, kf.bootstrap, names, concurrency, paced_rate, paced_seconds, report)
        finished = True
    finally:
        end_run(env, root, keep_logs=not finished, report=report)
    return result


def end_run(env: Environment, root: Path, *, keep_logs: bool, report: Report) -> None:
    """Stop every process a benchmark started; remove its folder, or — when something went wrong —
    keep it and say where the logs are."""
    env.down(remove_files=not keep_logs)
    if keep_logs:
        report(f"[bench] logs kept in {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)


async def _measure(
    result: PipelineResult,
    servers: list[tuple[process.ProcessRecord, str]],
    bootstrap: str,
    names: layout.Layout,
    concurrency: int,
    paced_rate: float,
    paced_seconds: float,
    report: Report,
) -> None:
    loop = asyncio.get_running_loop()
    clock = _Clock()
    gate = asyncio.Semaphore(concurrency)
    async with contextlib.AsyncExitStack() as stack:
        # Creates are spread over the replicas, as a load balancer in front of them would.
        replicas = [
            await stack.enter_async_context(
                MaestroClient(address, source="bench", batch_publish=result.batch_publish)
            )
            for _, address in servers
        ]
        client = replicas[0]

        async def register(i: int) -> Any:
            async with gate:
                return await client.create_consumer(f"cluster-{i:05d}")

        registered = await asyncio.gather(*(register(i) for i in range(result.clusters)))
        fleet = SimulatedFleet(bootstrap, names, on_applied=clock.on_applied)
        await fleet.add(list(registered))
        fleet.start()
        token = (await client.list(page_size=1))[1]
        watcher = asyncio.create_task(_watch(client, token, clock))

        async def create(cluster: str, index: int, replica: MaestroClient) -> None:
            rid = uuid.uuid4()
            async with gate:
                clock.sent[str(rid)] = loop.time()
                await replica.apply(cluster, rid, work_bundle(cluster, index))

        report(f"[bench] creating {result.total} works ({result.works_per_cluster} per cluster) ...")
        started = loop.time()
        progress = asyncio.create_task(_progress(clock, result.total, report))
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
        progress.cancel()
        bulk = list(clock.sent)
        result.create_to_applied_p50_ms = _ms([clock.applied[r] - clock.sent[r] for r in bulk], 0.5)
        result.create_to_applied_p99_ms = _ms([clock.applied[r] - clock.sent[r] for r in bulk], 0.99)
        deltas = [clock.status[r] - clock.applied[r] for r in bulk if r in clock.applied]
        result.applied_to_status_p50_ms = _ms(deltas, 0.5)
        result.applied_to_status_p99_ms = _ms(deltas, 0.99)

        report(f"[bench] paced phase: {paced_rate:.0f} creates/s for {paced_seconds:.0f}s ...")
        paced: list[str] = []
        count = int(paced_rate * paced_seconds)
        paced_start = loop.time()
        for i in range(count):
            await asyncio.sleep(max(0.0, paced_start + i / paced_rate - loop.time()))
            rid = uuid.uuid4()
            cluster = registered[i % len(registered)].name
            clock.sent[str(rid)] = loop.time()
            paced.append(str(rid))
            await replicas[i % len(replicas)].apply(cluster, rid, work_bundle(cluster, 10_000 + i))
        await _until(lambda: all(r in clock.applied for r in paced), 300)
        result.paced_rate = paced_rate
        result.paced_create_to_applied_p50_ms = _ms([clock.applied[r] - clock.sent[r] for r in paced], 0.5)
        result.paced_create_to_applied_p99_ms = _ms([clock.applied[r] - clock.sent[r] for r in paced], 0.99)

        report("[bench] listing every bundle (whole, without specs, without specs or statuses) ...")
        result.list_seconds, result.listed = await _timed_list(client)
        result.list_without_spec_seconds, _ = await _timed_list(client, with_spec=False)
        result.list_without_spec_or_status_seconds, _ = await _timed_list(
            client, with_spec=False, with_status=False
        )
        memory = [_rss_mb(record.pid) for record, _ in servers]
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


async def _watch(client: MaestroClient, token: str, clock: _Clock) -> None:
    loop = asyncio.get_running_loop()
    async for change in client.watch(token):
        clock.status.setdefault(change.resource_id, loop.time())


async def _progress(clock: _Clock, total: int, report: Report) -> None:
    while True:
        await asyncio.sleep(5)
        report(
            f"[bench]   sent {len(clock.sent)}/{total}, applied {len(clock.applied)}, "
            f"status stored {len(clock.status)}"
        )


async def _until(check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not done within {timeout:.0f}s")
        await asyncio.sleep(0.1)
