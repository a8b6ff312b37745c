"""``fleetplane bench publish``: one-at-a-time publishes, as upstream Maestro's source clients send them.

Upstream's sdk-go source work client publishes one CloudEvent per call and waits for its answer;
so do the clients here: ``concurrency`` of them, each creating works on its own cluster one after
another, every create a new ManifestWork (its id the UUIDv5 upstream's client makes). Each level
of concurrency measures accepted creates/s and the publish latency percentiles; the server's RSS
is read at the end. Secure by default (mutual TLS with a source certificate, per-call
authorization); ``insecure`` runs plaintext.

The load comes from upstream Maestro's own Go clients when their driver is given or built into the
cache (``publish_driver.py``), else from this project's gRPC client sending the same events. With
the driver, the works are then topped up to ``list_bundles`` and listed back through each server's
REST API, page by page, as upstream's client lists them.

Upstream Maestro's server (given, or built into the cache: ``localinfra/upstream_maestro``) runs in
turn on the same PostgreSQL, on a database of its own (``upstream.py``), under the same load;
without it, upstream is skipped with a note.
"""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc

from benchmarks import maestro_setup, publish_driver, upstream, upstream_authorizer
from benchmarks.proc_sample import rss_mb
from benchmarks.progress import Progress
from benchmarks.timeline import percentile_ms
from localinfra import kafka, ports, postgres, process, upstream_maestro
from localinfra.environment import Environment
from maestro.api import bundle_events, bundles, ids
from maestro.client import MaestroClient
from maestro.wire import channels, stubs
from maestro.wire import cloudevents as wire_events
from trust.identity import Identity

#: the source identity the publishing clients hold, as an upstream source client would
PUBLISHER = Identity.source("upstream-perf")
#: upstream's server's serving identity, from the same platform CA
UPSTREAM_IDENTITY = Identity.service("maestro-upstream")
#: the work namespace upstream's perf tool creates works in (ManifestWork namespace = cluster name)
_WORK_PREFIX = "perf-work"


@dataclass(frozen=True)
class PublishSettings:
    #: measured creates at each concurrency
    publishes: int = 2000
    concurrencies: tuple[int, ...] = (1, 10)
    #: creates before measuring, at the highest concurrency (connections, caches, the JIT of the pool)
    warmup: int = 200
    #: size of each work's manifests (upstream's perf works are ~16 KiB each)
    bundle_kib: int = 16
    insecure: bool = False
    #: upstream servers to run side by side; none given: the cached build, if any
    upstream_servers: tuple[Path, ...] = ()
    #: the driver of upstream's clients; None: the cached build, if any
    driver: Path | None = None
    #: works each server holds when the list is timed (upstream's perf scale: 6,000 of ~16 KiB)
    list_bundles: int = 6000
    #: measured creates at each concurrency for upstream (None: ``publishes``); secure, upstream
    #: takes about 5 creates/s, its authorizer's Kubernetes client limited to 5 requests/s
    upstream_publishes: int | None = None


def cached_or_given(settings: PublishSettings) -> PublishSettings:
    """The settings with upstream's driver and server taken from the build cache when not given."""
    driver = settings.driver or _if_built(upstream_maestro.binary())
    servers = settings.upstream_servers or tuple(
        p for p in (_if_built(upstream_maestro.server_binary()),) if p
    )
    return dataclasses.replace(settings, driver=driver, upstream_servers=servers)


def _if_built(path: Path) -> Path | None:
    return path if path.is_file() else None


@dataclass
class LevelResult:
    server: str
    concurrency: int
    publishes: int
    seconds: float = 0.0
    creates_per_s: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    max_ms: float = 0.0
    errors: int = 0
    #: CPU (user + system) per accepted create of each process of the run: the server, PostgreSQL
    #: (with its backends), Kafka, and upstream's client when it makes the load (its connections
    #: made before the clock included); on a shared machine a steadier figure than the latencies
    cpu_ms_per_create: dict[str, float] = field(default_factory=dict)


@dataclass
class PublishResult:
    bundle_kib: int
    insecure: bool
    levels: list[LevelResult] = field(default_factory=list)
    #: each server's resident set at the end of its run (MB)
    server_rss_mb: dict[str, float] = field(default_factory=dict)
    #: what published: upstream's Go clients or this project's gRPC client
    client: str = ""
    #: works listed back through each server's REST API, and in how many seconds
    listed: dict[str, int] = field(default_factory=dict)
    list_seconds: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def ratios(self) -> dict[int, float]:
        """fleetplane's accepted creates/s over upstream's, at each concurrency both ran."""
        rates = {(level.server, level.concurrency): level.creates_per_s for level in self.levels}
        return {
            concurrency: round(rate / rates[("upstream", concurrency)], 2)
            for (server, concurrency), rate in rates.items()
            if server == "fleetplane" and rates.get(("upstream", concurrency))
        }

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratios": self.ratios()}


def work_event(source: str, cluster: str, index: int, padding: str) -> stubs.cloudevent.CloudEvent:
    """A create as upstream's source work client sends it: a ManifestBundle of one ConfigMap, the
    work's ObjectMeta in the ``metadata`` extension, version 0, the upstream-made resource id."""
    name = f"{_WORK_PREFIX}-{index}"
    rid = ids.work_resource_id(source, cluster, name)
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "perf"}},
        "data": {"payload": padding},
    }
    meta = {
        "name": name,
        "namespace": cluster,
        "uid": str(rid),
        "resourceVersion": "0",
        "creationTimestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "labels": {"maestro.io/perf": "true"},
    }
    spec = bundles.ManifestBundle(
        manifests=[manifest],
        delete_option={"propagationPolicy": "Foreground"},
        manifest_configs=[
            {
                "resourceIdentifier": {
                    "group": "",
                    "resource": "configmaps",
                    "name": name,
                    "namespace": "default",
                },
                "updateStrategy": {"type": "ServerSideApply"},
            }
        ],
    )
    request = bundles.SpecRequest(bundles.SpecAction.CREATE, rid, cluster, source, 0, spec, meta)
    return wire_events.to_pb(bundle_events.spec_request_event(request))


@dataclass(frozen=True)
class Target:
    """A server under test: how to reach its source API, and its process for its memory."""

    name: str
    address: str
    credentials: channels.Credentials
    pid: int
    #: CPU seconds used so far by each process of the run, by name
    cpu: Callable[[], dict[str, float]]
    #: how upstream's Go clients reach it
    endpoints: publish_driver.Endpoints


def _level_result(
    target: Target,
    concurrency: int,
    count: int,
    latencies: Sequence[float],
    seconds: float,
    errors: Sequence[str],
    cpu_before: dict[str, float],
    progress: Progress,
) -> LevelResult:
    cpu_after = target.cpu()
    accepted = max(1, len(latencies))
    cpu = {
        name: round((cpu_after[name] - used) * 1000 / accepted, 3)
        for name, used in cpu_before.items()
        if name in cpu_after
    }
    if errors:
        progress(f"[bench]   {len(errors)} refused, the first: {errors[0]}")
    return LevelResult(
        server=target.name,
        concurrency=concurrency,
        publishes=count,
        seconds=round(seconds, 3),
        creates_per_s=len(latencies) / seconds if seconds else 0.0,
        p50_ms=percentile_ms(latencies, 0.5),
        p95_ms=percentile_ms(latencies, 0.95),
        p99_ms=percentile_ms(latencies, 0.99),
        max_ms=max(latencies, default=0.0) * 1000,
        errors=len(errors),
        cpu_ms_per_create=cpu,
    )


async def drive_with_upstreams_client(
    driver: publish_driver.GoDriver,
    target: Target,
    clusters: Sequence[str],
    settings: PublishSettings,
    progress: Progress,
    result: PublishResult,
) -> None:
    """Warm up, each concurrency level in turn, then top the works up to ``list_bundles`` and list
    them all back."""
    at, top, made = target.endpoints, max(settings.concurrencies), settings.warmup
    progress(f"[bench] {target.name}: warming up ({settings.warmup} creates, upstream's client) ...")
    await driver.create(at, "warmup", settings.warmup, settings.bundle_kib, clusters[:top])
    for concurrency in settings.concurrencies:
        progress(
            f"[bench] {target.name}: {settings.publishes} creates, {concurrency} in flight "
            f"(one client per cluster) ..."
        )
        cpu_before = target.cpu()
        done = await driver.create(
            at, f"c{concurrency}", settings.publishes, settings.bundle_kib, clusters[:concurrency]
        )
        made += settings.publishes
        level = _level_result(
            target,
            concurrency,
            settings.publishes,
            done.latencies_s,
            done.seconds,
            done.errors,
            cpu_before,
            progress,
        )
        level.cpu_ms_per_create["client"] = round(done.client_cpu_s * 1000 / max(1, len(done.latencies_s)), 3)
        result.levels.append(level)
        progress(
            f"[bench]   {level.creates_per_s:,.0f} creates/s, p50 {level.p50_ms:.2f} ms, "
            f"p99 {level.p99_ms:.2f} ms, {level.errors} errors"
        )
    if settings.list_bundles <= 0:
        return
    if made < settings.list_bundles:
        progress(f"[bench] {target.name}: topping up to {settings.list_bundles} works ...")
        await driver.create(at, "fill", settings.list_bundles - made, settings.bundle_kib, clusters[:top])
    progress(f"[bench] {target.name}: listing every work through the REST API ...")
    result.listed[target.name], seconds = await driver.list_all(at)
    result.list_seconds[target.name] = round(seconds, 3)
    progress(f"[bench]   {result.listed[target.name]} works listed in {seconds:.2f} s")


async def drive(
    target: Target,
    clusters: Sequence[str],
    settings: PublishSettings,
    progress: Progress,
    *,
    source: str,
) -> list[LevelResult]:
    """Warm up, then each concurrency level in turn; each client publishes to its own cluster."""
    padding = "x" * (settings.bundle_kib * 1024)
    counter = iter(range(10**9))
    results = []
    async with channels.aio_channel(
        target.address, target.credentials, options=[("grpc.max_send_message_length", 8 * 1024 * 1024)]
    ) as channel:
        stub = stubs.cloudevent_grpc.CloudEventServiceStub(channel)
        top = max(settings.concurrencies)
        progress(f"[bench] {target.name}: warming up ({settings.warmup} creates) ...")
        await _level(stub, clusters, top, settings.warmup, counter, padding, source, target, progress)
        for concurrency in settings.concurrencies:
            progress(
                f"[bench] {target.name}: {settings.publishes} creates, {concurrency} in flight "
                f"(one per cluster) ..."
            )
            results.append(
                await _level(
                    stub,
                    clusters,
                    concurrency,
                    settings.publishes,
                    counter,
                    padding,
                    source,
                    target,
                    progress,
                )
            )
            last = results[-1]
            progress(
                f"[bench]   {last.creates_per_s:,.0f} creates/s, p50 {last.p50_ms:.2f} ms, "
                f"p99 {last.p99_ms:.2f} ms, {last.errors} errors"
            )
    return results


async def _level(
    stub: stubs.cloudevent_grpc.CloudEventServiceStub,
    clusters: Sequence[str],
    concurrency: int,
    count: int,
    counter: Any,
    padding: str,
    source: str,
    target: Target,
    progress: Progress,
) -> LevelResult:
    # Events are made before the clock starts: the load generator shares the cores with the server.
    requests = [
        stubs.cloudevent.PublishRequest(
            event=work_event(source, clusters[i % len(clusters)], next(counter), padding)
        )
        for i in range(count)
    ]
    queues: list[list[stubs.cloudevent.PublishRequest]] = [[] for _ in range(concurrency)]
    for i, request in enumerate(requests):
        queues[i % concurrency].append(request)
    latencies: list[float] = []
    errors: list[str] = []
    progress.step(f"{target.name}: creates at concurrency {concurrency}", count)

    async def client(queue: list[stubs.cloudevent.PublishRequest]) -> None:
        for request in queue:
            started = time.perf_counter()
            try:
                await stub.Publish(request, timeout=30)
            except grpc.aio.AioRpcError as exc:
                errors.append(f"{exc.code().name}: {exc.details()}")
                continue
            latencies.append(time.perf_counter() - started)
            progress.advance(len(latencies), f"[bench]   {len(latencies)}/{count} accepted")

    cpu_before = target.cpu()
    started = time.perf_counter()
    await asyncio.gather(*(client(queue) for queue in queues))
    seconds = time.perf_counter() - started
    return _level_result(target, concurrency, count, latencies, seconds, errors, cpu_before, progress)


def _cpu_of(
    env: Environment, server: str, extra: dict[str, str] | None = None
) -> Callable[[], dict[str, float]]:
    """CPU seconds so far of the server under test, PostgreSQL, Kafka and the ``extra`` processes
    it relies on (name -> label)."""
    names = {server: "server", "postgres": "postgres", "kafka": "kafka", **(extra or {})}

    def used() -> dict[str, float]:
        records = {label: env.processes[name] for name, label in names.items() if name in env.processes}
        return process.cpu_seconds(records)

    return used


async def _measure(
    target: Target,
    clusters: Sequence[str],
    settings: PublishSettings,
    progress: Progress,
    result: PublishResult,
) -> None:
    """Drive ``target`` with upstream's Go clients when their driver is at hand, else with this
    project's gRPC client; then read its RSS."""
    if settings.driver is not None:
        driver = publish_driver.GoDriver(settings.driver, PUBLISHER.name)
        await drive_with_upstreams_client(driver, target, clusters, settings, progress, result)
    else:
        result.levels += await drive(target, clusters, settings, progress, source=PUBLISHER.name)
    result.server_rss_mb[target.name] = rss_mb(target.pid)


async def run(settings: PublishSettings, progress: Progress) -> PublishResult:
    settings = cached_or_given(settings)
    result = PublishResult(settings.bundle_kib, settings.insecure)
    if settings.driver is not None:
        result.client = f"upstream Maestro's Go clients ({settings.driver})"
    else:
        result.client = "fleetplane's gRPC client, upstream's events"
        note = (
            "driven by fleetplane's client and no list timed: build the driver of upstream's clients "
            "(python -m localinfra.upstream_maestro) or give --upstream-driver PATH"
        )
        progress(f"[bench] {note}")
        result.notes.append(note)
    root = Path(tempfile.mkdtemp(prefix="fleetplane-bench-"))
    env = Environment(root / "env")
    clusters = [f"perf-cluster-{i:02d}" for i in range(max(settings.concurrencies))]
    finished = False
    try:
        mode = "plaintext, no authorization" if settings.insecure else "TLS, client certificates, ACLs"
        progress(f"[bench] starting PostgreSQL and Kafka ({mode}) ...")
        pg = postgres.start(env)
        kf = kafka.start(env, heap="512m", secure=not settings.insecure)
        security = maestro_setup.Security(env, insecure=settings.insecure)
        rest_port = ports.free_port()
        record, address, _ = await maestro_setup.start_server(
            env, pg, kf, root, security, extra=["--rest-port", str(rest_port)]
        )
        progress(
            f"[bench] fleetplane's server up (pid {record.pid}); registering {len(clusters)} clusters ..."
        )
        async with MaestroClient(address, source="bench", credentials=security.credentials()) as admin:
            for cluster in clusters:
                await admin.create_consumer(cluster)
        scheme = "http" if settings.insecure else "https"
        endpoints = publish_driver.Endpoints(
            address, f"{scheme}://127.0.0.1:{rest_port}", security.tls(PUBLISHER)
        )
        target = Target(
            "fleetplane",
            address,
            security.credentials(PUBLISHER),
            record.pid,
            _cpu_of(env, record.name),
            endpoints,
        )
        await _measure(target, clusters, settings, progress, result)
        env.stop_process(record.name)
        await _upstream_runs(settings, env, pg, root, clusters, result, progress)
        finished = True
    finally:
        maestro_setup.end_run(env, root, keep_logs=not finished, report=progress)
    return result


async def _upstream_runs(
    settings: PublishSettings,
    env: Environment,
    pg: postgres.Postgres,
    root: Path,
    clusters: Sequence[str],
    result: PublishResult,
    progress: Progress,
) -> None:
    if not settings.upstream_servers:
        note = (
            "upstream Maestro not run: build it (python -m localinfra.upstream_maestro) or give "
            "--upstream-server PATH (a built `maestro` binary) to run it side by side"
        )
        progress(f"[bench] {note}")
        result.notes.append(note)
        return
    secure, credentials, tls, authorizer = None, channels.Credentials.insecure(), None, {}
    if not settings.insecure:
        # Started after fleetplane's run: its API server is upstream's cost alone.
        progress("[bench] starting the kube-apiserver upstream's authorizer asks ...")
        kubeconfig = await asyncio.to_thread(upstream_authorizer.start, env, PUBLISHER)
        security = maestro_setup.Security(env)
        serving = security.tls(UPSTREAM_IDENTITY, server=True)
        assert serving is not None  # secure: issued
        secure = upstream.Secure(serving, kubeconfig)
        credentials, tls = security.credentials(PUBLISHER), security.tls(PUBLISHER)
        authorizer = upstream_authorizer.process_names()
    if settings.upstream_publishes is not None:
        settings = dataclasses.replace(settings, publishes=settings.upstream_publishes)
    for i, binary in enumerate(settings.upstream_servers):
        name = f"upstream-{i}" if len(settings.upstream_servers) > 1 else "upstream"
        progress(f"[bench] starting upstream Maestro {binary} on the same PostgreSQL ...")
        server = await asyncio.to_thread(upstream.start, env, pg, binary, name, root / name, secure)
        for cluster in clusters:
            await upstream.create_consumer(server, cluster)
        target = Target(
            name,
            server.grpc,
            credentials,
            server.record.pid,
            _cpu_of(env, server.record.name, authorizer),
            publish_driver.Endpoints(server.grpc, server.rest, tls),
        )
        await _measure(target, clusters, settings, progress, result)
        env.stop_process(server.record.name)
        result.notes.append(f"{name}: {binary} ({server.mode})")
