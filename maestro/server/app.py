"""Wires one server replica: pool, stores, Kafka clients, gRPC services and background loops.

Every dependency is built here and passed in; nothing reaches for a global. ``run`` serves until
cancelled (SIGTERM/SIGINT in the CLI) and then stops the loops and the gRPC server in order.

The gRPC port serves TLS and requires a client certificate of the platform's CA; the token port,
when there is one, serves TLS to callers who bring a hub token instead. Plaintext only with
``insecure``, which logs a warning at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from kubeio import credentials, probes
from kubeio.rest import KubeRest, RetrySettings
from maestro.api import consumers
from maestro.server import rest_api
from maestro.server.auth import Guard
from maestro.server.client_certificates import RevocationList
from maestro.server.consumer_admin import ConsumerAdmin
from maestro.server.hub_reviews import HubReviews
from maestro.server.ingest import StatusIngester
from maestro.server.metrics import ServerMetrics
from maestro.server.notifier import Notifier
from maestro.server.quarantine_api import QuarantineService
from maestro.server.query_api import QueryService
from maestro.server.readiness import Readiness
from maestro.server.reaper import DeletionReaper
from maestro.server.relay import OutboxRelay
from maestro.server.rest_api import RestApi
from maestro.server.settings import ServerSettings
from maestro.server.source_api import BatchSourceService, SourceService
from maestro.server.spec_writer import SpecWriter
from maestro.server.streams import StreamLimits
from maestro.storage import migrations, pool, store
from maestro.transport.admin import Topics
from maestro.transport.consumer import Reader
from maestro.transport.producer import Publisher
from maestro.transport.topic_settings import TopicSettings
from maestro.wire import stubs
from trust import files

log = logging.getLogger(__name__)


@dataclass
class Running:
    """A started replica; tests and the benchmark read its counters."""

    server: grpc.aio.Server
    port: int
    # where token callers connect; None when the server takes no tokens
    token_port: int | None
    relay: OutboxRelay
    ingester: StatusIngester
    reaper: DeletionReaper
    tasks: list[asyncio.Task[None]]
    closers: list[object]
    readiness: Readiness
    # where /healthz and /readyz answer, and /metrics; None where they do not
    health_port: int | None
    metrics_port: int | None
    # where upstream Maestro's REST API answers; None where it does not
    rest_port: int | None = None

    async def stop(self) -> None:
        self.readiness.stopping()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.server.stop(grace=1)
        for closer in self.closers:
            result = closer()  # type: ignore[operator]
            if asyncio.iscoroutine(result):
                await result


def server_credentials(tls: files.TLSFiles, *, client_certificates: bool) -> grpc.ServerCredentials:
    """TLS with the files as they are at each new connection: a renewed certificate or CA bundle
    (a Secret's mounted files replaced) is served without a restart."""

    def configuration() -> grpc.ServerCertificateConfiguration:
        ca, cert, key = tls.read()
        assert cert is not None and key is not None
        return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)

    seen = [tls.fingerprint()]

    def renewed() -> grpc.ServerCertificateConfiguration | None:
        try:
            now = tls.fingerprint()
            if now == seen[0]:
                return None
            fresh = configuration()
        except Exception as exc:  # half-replaced files: keep serving the last good ones, try again
            log.warning("reading the renewed TLS files failed, serving the previous ones: %s", exc)
            return None
        seen[0] = now
        log.info("serving the renewed TLS files of %s", tls.cert)
        return fresh

    return grpc.dynamic_ssl_server_credentials(
        configuration(), renewed, require_client_authentication=client_certificates
    )


async def _guard(
    settings: ServerSettings, st: store.Store, notifier: Notifier
) -> tuple[Guard, RevocationList, HubReviews | None]:
    revoked = RevocationList(st, notifier)
    await revoked.load()
    reviews = None
    if settings.token_port is not None:
        # Loading may run an exec plugin: not on the event loop.
        hub = await asyncio.to_thread(credentials.load, settings.hub_kubeconfig)
        # A review that waits on a hub that is away holds up its call: fail it soon instead.
        rest = KubeRest(hub, RetrySettings(budget=5.0, read_timeout=5.0))
        reviews = HubReviews(rest, audiences=settings.token_audiences, ttl=settings.auth_cache_seconds)
    guard = Guard(
        insecure=settings.insecure, trust_domain=settings.trust_domain, reviews=reviews, revoked=revoked
    )
    return guard, revoked, reviews


def _listen(server: grpc.aio.Server, settings: ServerSettings) -> tuple[int, int | None]:
    address = f"{settings.host}:{settings.port}"
    if settings.insecure:
        log.warning(
            "serving gRPC on %s WITHOUT TLS OR AUTHENTICATION (--insecure): anyone who reaches the port "
            "may publish to every cluster, read every work and use the admin API",
            address,
        )
        port = server.add_insecure_port(address)
    else:
        assert settings.tls is not None
        port = server.add_secure_port(address, server_credentials(settings.tls, client_certificates=True))
    if port == 0:
        raise OSError(f"cannot listen on {address}: is the port in use?")
    token_port = None
    if settings.token_port is not None:
        assert settings.tls is not None
        token_address = f"{settings.host}:{settings.token_port}"
        token_port = server.add_secure_port(
            token_address, server_credentials(settings.tls, client_certificates=False)
        )
        if token_port == 0:
            raise OSError(f"cannot listen on {token_address}: is the port in use?")
    return port, token_port


async def _repair_kafka(st: store.Store, topics: Topics, settings: TopicSettings) -> None:
    """Give every registered consumer the topics and ACLs it should have (the broker may have lost
    them, or the consumer was registered under the single-topic layout of old), set their topics'
    configs where a limit changed since they were made, and delete the topics and ACLs of slots no
    consumer holds."""
    known: list[consumers.Consumer] = []
    token = ""
    while True:
        page = await st.list_consumers(page_size=500, page_token=token)
        known += page.items
        token = page.next_page_token
        if not token:
            break
    made_topics, made_acls = await topics.reconcile(known)
    if made_topics or made_acls:
        log.warning(
            "created %d missing topic(s) and %d missing ACL(s) of the %d registered consumers",
            made_topics,
            made_acls,
            len(known),
        )
    aligned = await topics.align(known)
    if aligned.altered:
        log.info(
            "set the wanted configs on %d topic(s) that differed: %s",
            len(aligned.altered),
            ", ".join(aligned.altered[:10]),
        )
    if aligned.under_replicated:
        log.warning(
            "%d topic(s) have fewer replicas than --topic-replication-factor %s (it applies to new "
            "topics; reassign these with kafka-reassign-partitions): %s",
            len(aligned.under_replicated),
            settings.replication_factor,
            ", ".join(aligned.under_replicated[:10]),
        )
    released = await st.sweep(topics.release_orphans)
    if released:
        log.warning(
            "deleted %d topic(s) of no registered consumer (a registration that did not commit): %s",
            len(released),
            ", ".join(released[:10]),
        )


async def start(settings: ServerSettings, *, migrate: bool = True) -> Running:
    if migrate:
        await migrations.migrate(settings.dsn)
    db = await pool.open_pool(settings.dsn, min_size=2, max_size=settings.pool_size)
    placement = consumers.PlacementPolicy(
        topic=settings.topics.spec_topic_base,
        partitions_per_topic=1,
        status_topic=settings.topics.status_topic_base,
    )
    st = store.Store(db, placement=placement, owner=settings.server_id)
    topics = Topics(
        settings.kafka,
        bundle_limit=settings.bundle_limit,
        names=settings.topics,
        settings=settings.topic_settings,
    )
    await _repair_kafka(st, topics, settings.topic_settings)
    notifier = Notifier(settings.dsn, [store.STATUS_CHANNEL, store.OUTBOX_CHANNEL, store.REVOCATION_CHANNEL])
    await notifier.start()
    guard, revoked, reviews = await _guard(settings, st, notifier)
    publisher = Publisher(settings.kafka, bundle_limit=settings.bundle_limit, client_id=settings.server_id)
    reader = Reader(
        settings.kafka,
        settings.topics.server_group,
        client_id=settings.server_id,
        bundle_limit=settings.bundle_limit,
        stall_after=settings.stall_seconds,
        metadata_refresh=settings.status_topics_refresh,
    )
    relay = OutboxRelay(st, publisher, notifier, settings.relay_batch, attempts=settings.quarantine_after)
    ingester = StatusIngester(
        st,
        reader,
        publisher,
        settings.server_id,
        settings.ingest_batch,
        settings.topics,
        sequence_ahead=settings.status_sequence_ahead,
        attempts=settings.quarantine_after,
    )
    reaper = DeletionReaper(st, settings.deletion_grace)
    writer = SpecWriter(st)
    writer.start()

    limit = settings.grpc_message_limit
    # Counted only when someone may read the figures: the interceptor costs every call a little.
    metrics = ServerMetrics() if settings.metrics_port is not None else None
    server = grpc.aio.server(
        interceptors=[metrics.interceptor()] if metrics is not None else [],
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", settings.grpc_reply_limit),
        ],
    )
    # One count of open streams for both services: the limits are per replica.
    limits = StreamLimits(settings.max_streams, settings.max_streams_per_caller)
    source = SourceService(st, notifier, settings, writer, guard, limits)
    stubs.cloudevent_grpc.add_CloudEventServiceServicer_to_server(source, server)
    stubs.source_grpc.add_MaestroSourceServicer_to_server(BatchSourceService(source), server)
    admin = ConsumerAdmin(st, topics, ingester.topics_added)
    query = QueryService(st, notifier, settings, guard, admin, revoked, limits)
    stubs.query_grpc.add_MaestroQueryServicer_to_server(query, server)
    stubs.quarantine_grpc.add_MaestroQuarantineServicer_to_server(
        QuarantineService(st, publisher, guard), server
    )
    # Health and reflection answer without credentials: they tell whether the server serves and
    # the (public) shape of its API, nothing stored.
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (
            stubs.CLOUDEVENT_SERVICE,
            stubs.QUERY_SERVICE,
            stubs.SOURCE_SERVICE,
            stubs.QUARANTINE_SERVICE,
            reflection.SERVICE_NAME,
            health.SERVICE_NAME,
        ),
        server,
    )
    port, token_port = _listen(server, settings)
    await server.start()

    async def ping_database() -> None:
        async with db.connection() as conn:
            await conn.execute("SELECT 1")

    readiness = Readiness(
        health_servicer,
        ("", stubs.CLOUDEVENT_SERVICE, stubs.QUERY_SERVICE, stubs.SOURCE_SERVICE),
        ping_database,
    )
    await readiness.serving()
    tasks = [
        asyncio.create_task(relay.run(), name="outbox-relay"),
        asyncio.create_task(ingester.run(), name="status-ingest"),
        asyncio.create_task(reaper.run(), name="deletion-reaper"),
        asyncio.create_task(revoked.run(), name="revocations"),
    ]
    if metrics is not None:
        tasks.append(asyncio.create_task(metrics.sample_outbox(st), name="outbox-metrics"))
        tasks.append(asyncio.create_task(metrics.sample_works(st), name="works-metrics"))
        metrics.watch_ingest(reader.lag)
    readiness.watch([*tasks, *notifier.tasks, *writer.tasks])
    # Started last: an answer from /readyz also tells that the gRPC ports listen.
    http_runners, health_port, metrics_port = [], None, None
    if settings.health_port is not None:
        runner, health_port = await probes.serve(
            probes.health_routes(readiness), settings.health_host, settings.health_port
        )
        http_runners.append(runner)
    rest_port = None
    if settings.rest_port is not None:
        rest = RestApi(st, guard, admin, page_bytes=settings.max_page_bytes)
        runner, rest_port = await rest_api.serve(rest, settings.host, settings.rest_port, settings.tls)
        http_runners.append(runner)
    if metrics is not None and settings.metrics_port is not None:
        runner, metrics_port = await probes.serve(
            metrics.routes(), settings.metrics_host, settings.metrics_port
        )
        http_runners.append(runner)
    log.info(
        "maestro server %s serving on %s:%d%s",
        settings.server_id,
        settings.host,
        port,
        f" (token callers on port {token_port})" if token_port is not None else "",
    )

    async def close_store() -> None:
        await st.release_outbox()
        await db.close()

    closers: list[object] = [
        *(runner.cleanup for runner in http_runners),
        writer.stop,
        notifier.stop,
        ingester.close,
        reader.close,
        functools.partial(asyncio.to_thread, publisher.close),
        close_store,
    ]
    if reviews is not None:
        closers.append(reviews.close)
    return Running(
        server,
        port,
        token_port,
        relay,
        ingester,
        reaper,
        tasks,
        closers,
        readiness,
        health_port,
        metrics_port,
        rest_port,
    )


async def serve(settings: ServerSettings) -> None:
    running = await start(settings)
    try:
        await running.server.wait_for_termination()
    finally:
        await running.stop()
