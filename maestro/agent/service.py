"""The real agent process: one cluster, its own Kafka topics, a kube-apiserver to apply to.

The placement (the cluster's spec and status topics, and its slot) is read once from the server's
query API; after that the agent talks only to Kafka and its cluster. Kafka knows the agent by its
certificate, the cluster's identity for its current slot, and lets it read its spec topic and write
its status topic only. Offsets are committed after a batch is applied and reported, so a crash
re-reads the batch, and re-applying it changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import grpc
from confluent_kafka import KafkaError, KafkaException

from kubeio import probes
from maestro.agent import placement
from maestro.agent.agent_loop import Agent
from maestro.agent.kube import KubeApplier
from maestro.agent.metrics import AgentMetrics, Sources
from maestro.agent.readiness import ReaderState
from maestro.agent.watcher import AppliedObjectWatcher
from maestro.api import consumers
from maestro.transport import layout
from maestro.transport.connection import KafkaSettings
from maestro.transport.consumer import Reader
from maestro.transport.errors import authorization_failure
from maestro.transport.messages import Outgoing
from maestro.transport.producer import Publisher
from maestro.wire import channels, stubs
from maestro.wire import query as wire_query
from trust import authority

log = logging.getLogger(__name__)

# Status reports are published with `Publisher.deliver`: a broker restart is waited out (the
# producer keeps every report queued until Kafka acknowledges it), and a report Kafka definitely
# refused for a transient reason is sent again; only a permanent refusal (e.g. too large) raises,
# and the agent exits, to resync on start.


def _transient(exc: KafkaException) -> bool:
    error = exc.args[0] if exc.args else None
    return isinstance(error, KafkaError) and not error.fatal() and not authorization_failure(error)


@dataclass(frozen=True)
class AgentSettings:
    cluster: str
    kubeconfig: str | None
    kafka: KafkaSettings
    server: str
    # how the placement lookup authenticates: the agent's cluster certificate
    credentials: channels.Credentials
    topics: layout.Layout = field(default_factory=layout.Layout)
    # Changes are watched; the periodic re-read of every applied object is the safety net.
    refresh_seconds: float = 60.0
    batch: int = 500
    # Polling this long with nothing received while the broker holds more for the agent's
    # partition means the consumer is stuck (it can be, after a broker restart): it is restarted.
    stall_seconds: float = 20.0
    # How often the agent asks Maestro whether its consumer was re-registered or moved (it also
    # asks at once when Kafka refuses it something for good).
    placement_check_seconds: float = 30.0
    # Where /healthz and /readyz answer plain HTTP, and /metrics (None: nowhere; 0: a free port).
    health_port: int | None = None
    health_host: str = "127.0.0.1"
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"


async def lookup_placement(
    server: str,
    cluster: str,
    credentials: channels.Credentials,
    timeout: float = 60.0,
    on_retry: Callable[[str], None] | None = None,
) -> consumers.Consumer:
    """The consumer record of this cluster; waits for the server (``on_retry`` is told why each
    try failed), fails clearly if unregistered or refused (a certificate of another cluster, or of
    an earlier registration of this one)."""
    async with channels.aio_channel(server, credentials) as channel:
        stub = stubs.query_grpc.MaestroQueryStub(channel)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                reply = await stub.GetConsumer(stubs.query.GetConsumerRequest(name=cluster), timeout=10)
                return wire_query.consumer_from_pb(reply)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND:
                    raise SystemExit(
                        f"cluster {cluster!r} is not registered with Maestro at {server}: "
                        f"run `fleetplane maestro consumers create {cluster}` first"
                    ) from None
                if exc.code() in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
                    raise SystemExit(
                        f"Maestro at {server} refused cluster {cluster!r}'s agent: {exc.details()}"
                    ) from None
                if asyncio.get_running_loop().time() > deadline:
                    raise SystemExit(
                        f"cannot reach Maestro at {server}: {exc.details()} (if it is up, it may refuse "
                        "the TLS handshake: check that the agent's certificate is current and from the "
                        "CA the server trusts, and its ca.crt the one that issued the server's)"
                    ) from None
                if on_retry is not None:
                    on_retry(f"{exc.code().name}: {exc.details()}")
                await asyncio.sleep(1)


def check_identity(kafka: KafkaSettings, consumer: consumers.Consumer) -> None:
    """Refuse to start with a certificate Kafka would not let read this cluster's topics: the one
    of another cluster, or of an earlier registration of this one (another slot)."""
    problem = placement.identity_problem(kafka, consumer)
    if problem is not None:
        raise SystemExit(problem)


class KafkaLink:
    """The agent's Kafka clients, made again when its certificate files are replaced.

    librdkafka reads a certificate once, when a client is made, and presents it on every
    connection that client opens; a renewed certificate (the provisioner renews it at two thirds of
    its lifetime) is only used by new clients. Every ``renew_every`` seconds the files are checked,
    and on a change the reader and publisher are replaced between two batches: the old publisher
    is flushed (its reports delivered) before it is closed, the new reader resumes from the
    committed offsets.
    """

    def __init__(
        self, settings: AgentSettings, consumer: consumers.Consumer, renew_every: float = 10.0
    ) -> None:
        self._settings = settings
        self._consumer = consumer
        self._renew_every = renew_every
        self._checked = 0.0
        self._seen: tuple[float, ...] = ()
        self.renewals = 0
        self._restarts_before = 0
        #: the certificate's notAfter (seconds since the epoch), as read when the clients were made
        self.not_after: float | None = None
        self.reader: Reader
        self.publisher: Publisher

    @property
    def consumer_restarts(self) -> int:
        """Times a spec consumer was started afresh, over every reader this link made."""
        return self._restarts_before + self.reader.restarts

    def _fingerprint(self) -> tuple[float, ...]:
        tls = self._settings.kafka.tls
        return tls.fingerprint() if tls is not None else ()

    async def open(self) -> None:
        settings = self._settings
        self._seen = self._fingerprint()
        self.not_after = _not_after(settings.kafka)
        self.publisher = Publisher(settings.kafka, client_id=f"agent-{settings.cluster}")
        self.reader = Reader(
            settings.kafka,
            settings.topics.agent_group(settings.cluster),
            client_id=f"agent-{settings.cluster}",
            stall_after=settings.stall_seconds,
        )
        placement = self._consumer.spec_placement
        await asyncio.to_thread(self.reader.assign, [(placement.topic, placement.partition)])

    async def deliver(self, items: Sequence[Outgoing]) -> None:
        await self.publisher.deliver(items, what=f"{self._settings.cluster}: status reports")

    async def renew_if_replaced(self) -> bool:
        now = time.monotonic()
        if now - self._checked < self._renew_every:
            return False
        self._checked = now
        try:
            seen = self._fingerprint()
        except OSError as exc:  # replaced under us: the next check finds the new files
            log.warning("%s: reading the certificate files failed: %s", self._settings.cluster, exc)
            return False
        if seen == self._seen:
            return False
        old_reader, old_publisher = self.reader, self.publisher
        await self.open()
        self._restarts_before += old_reader.restarts
        old_reader.close()
        await asyncio.to_thread(old_publisher.close)
        self.renewals += 1
        log.info("%s: certificate files replaced; Kafka clients made again with them", self._settings.cluster)
        return True

    async def close(self) -> None:
        self.reader.close()
        await asyncio.to_thread(self.publisher.close)


def _not_after(kafka: KafkaSettings) -> float | None:
    if kafka.tls is None or kafka.tls.cert is None:
        return None
    try:
        return authority.not_after(kafka.tls.cert.read_bytes()).timestamp()
    except (OSError, ValueError) as exc:  # being replaced: the next renewal check reads it again
        log.warning("reading the certificate's expiry failed: %s", exc)
        return None


async def run(
    settings: AgentSettings, *, ready: asyncio.Event | None = None, link_seen: list[KafkaLink] | None = None
) -> None:
    """Serve the cluster until cancelled, with its health and metrics ports (when asked for) open
    from the start: a probe learns what the agent waits for while it starts."""
    state = ReaderState(settings.server)
    readiness = probes.Readiness({"spec reader": state.problem})
    metrics = AgentMetrics()
    async with (
        probes.serving(probes.health_routes(readiness), settings.health_host, settings.health_port),
        probes.serving(probes.metrics_routes(metrics.registry), settings.metrics_host, settings.metrics_port),
    ):
        await _serve(settings, state, readiness, metrics, ready, link_seen)


async def _serve(
    settings: AgentSettings,
    state: ReaderState,
    readiness: probes.Readiness,
    metrics: AgentMetrics,
    ready: asyncio.Event | None,
    link_seen: list[KafkaLink] | None,
) -> None:
    consumer = await lookup_placement(
        settings.server, settings.cluster, settings.credentials, on_retry=state.placement_refused
    )
    check_identity(settings.kafka, consumer)
    if not consumer.status_topic:
        raise SystemExit(
            f"the Maestro server at {settings.server} named no status topic for {consumer.name}: "
            "it predates topics per cluster; upgrade it"
        )
    while True:
        moved = await _session(settings, consumer, state, readiness, metrics, ready, link_seen)
        log.warning("%s: %s; following it", settings.cluster, placement.describe(settings.cluster, moved))
        state.starting(f"following its consumer: {placement.describe(settings.cluster, moved)}")
        consumer = await placement.follow(
            settings.server, settings.cluster, settings.credentials, settings.kafka, state.starting
        )


async def _session(
    settings: AgentSettings,
    consumer: consumers.Consumer,
    state: ReaderState,
    readiness: probes.Readiness,
    metrics: AgentMetrics,
    ready: asyncio.Event | None,
    link_seen: list[KafkaLink] | None,
) -> placement.Answer:
    """Serve one placement of the cluster until it moves (returns Maestro's answer saying where)."""
    state.starting(f"assigning its spec partition {consumer.spec_placement.topic}")
    applier = KubeApplier(settings.cluster, settings.kubeconfig)
    link = KafkaLink(settings, consumer)
    await link.open()
    if link_seen is not None:
        link_seen.append(link)
    # The watcher starts watching when the agent's start lists its records.
    watcher = AppliedObjectWatcher(applier.backend.rest, lambda rids: agent.mark_changed(rids))
    agent = Agent(
        applier,
        link.deliver,
        status_topic=consumer.status_topic,
        follow=watcher.follow,
        on_apply=metrics.apply_seconds.observe,
    )
    background: list[asyncio.Task[None]] = []
    watch = placement.PlacementWatch(
        settings.server, consumer, settings.credentials, settings.placement_check_seconds
    )
    moving = asyncio.create_task(watch.until_moved(), name="agent-placement")
    reading: asyncio.Task[None] | None = None
    try:
        state.starting("loading its applied records and asking Maestro for what changed")
        await agent.start()
        metrics.attach(
            Sources(
                stats=agent.stats,
                held=lambda: agent.held,
                consumer_restarts=lambda: link.consumer_restarts,
                renewals=lambda: link.renewals,
                lag=lambda: link.reader.lag(),
                not_after=lambda: link.not_after,
            )
        )
        background = [
            asyncio.create_task(agent.refresh_forever(settings.refresh_seconds), name="agent-refresh"),
            asyncio.create_task(agent.changes_forever(), name="agent-changes"),
        ]
        readiness.watch(background)
        state.started()
        log.info(
            "agent for %s reading %s[%d], reporting on %s, as %s",
            settings.cluster,
            consumer.spec_placement.topic,
            consumer.spec_placement.partition,
            consumer.status_topic,
            settings.kafka.principal,
        )
        if ready is not None:
            ready.set()
        reading = asyncio.create_task(read_forever(settings, state, link, agent), name="agent-reader")
        await asyncio.wait([reading, moving], return_when=asyncio.FIRST_COMPLETED)
        if moving.done():
            return moving.result()
        # The reader only ends by failing: if Kafka refused it because the consumer moved, follow.
        failure = reading.exception()
        answer = await watch.moved()
        if answer is None and failure is not None:
            raise failure
        assert answer is not None
        return answer
    finally:
        readiness.unwatch(background)
        for task in [*background, moving, *([reading] if reading else [])]:
            task.cancel()
        for task in [*background, moving, *([reading] if reading else [])]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await watcher.close()
        await link.close()
        await applier.close()


async def read_forever(settings: AgentSettings, state: ReaderState, link: KafkaLink, agent: Agent) -> None:
    """Apply the spec events of the cluster's partition, for ever (returns only by raising)."""
    while True:
        await link.renew_if_replaced()
        # A broker restart or a moved group coordinator must not stop the agent: the consumer
        # reconnects by itself. An uncommitted batch is covered by the next commit, or re-read
        # after a crash (and skipped: its versions are applied).
        try:
            messages = await link.reader.poll_batch(settings.batch, 0.5)
        except KafkaException as exc:
            if not _transient(exc):
                raise
            state.polled(exc)
            log.warning("%s: reading spec events failed, retrying: %s", settings.cluster, exc)
            await asyncio.sleep(1)
            continue
        state.polled()
        if messages:
            state.applying(True)
            try:
                await agent.handle(messages)
            finally:
                state.applying(False)
            try:
                await link.reader.commit(messages)
            except KafkaException as exc:
                if not _transient(exc):
                    raise
                log.warning(
                    "%s: committing offsets failed (the next commit covers them): %s",
                    settings.cluster,
                    exc,
                )
