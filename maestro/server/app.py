"""Wires one server replica: pool, stores, Kafka clients, gRPC services and background loops.

Every dependency is built here and passed in; nothing reaches for a global. ``run`` serves until
cancelled (SIGTERM/SIGINT in the CLI) and then stops the loops and the gRPC server in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from maestro.api import consumers
from maestro.server.ingest import StatusIngester
from maestro.server.notifier import Notifier
from maestro.server.query_api import QueryService
from maestro.server.reaper import DeletionReaper
from maestro.server.relay import OutboxRelay
from maestro.server.settings import ServerSettings
from maestro.server.source_api import BatchSourceService, SourceService
from maestro.server.spec_writer import SpecWriter
from maestro.storage import migrations, pool, store
from maestro.transport import clients
from maestro.wire import stubs

log = logging.getLogger(__name__)


@dataclass
class Running:
    """A started replica; tests and the benchmark read its counters."""

    server: grpc.aio.Server
    port: int
    relay: OutboxRelay
    ingester: StatusIngester
    reaper: DeletionReaper
    tasks: list[asyncio.Task[None]]
    closers: list[object]

    async def stop(self) -> None:
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


def _report_stopped(task: asyncio.Task[None]) -> None:
    """A background loop runs until cancelled; one that ends otherwise must not go unnoticed."""
    if task.cancelled():
        return
    error = task.exception()
    log.critical(
        "background loop %s stopped: %r; this replica no longer does its work",
        task.get_name(),
        error,
        exc_info=error,
    )


async def start(settings: ServerSettings, *, migrate: bool = True) -> Running:
    if migrate:
        await migrations.migrate(settings.dsn)
    db = await pool.open_pool(settings.dsn, min_size=2, max_size=settings.pool_size)
    st = store.Store(
        db, placement=consumers.PlacementPolicy(topic=settings.topics.spec_topic), owner=settings.server_id
    )
    topics = clients.Topics(settings.kafka, bundle_limit=settings.bundle_limit, names=settings.topics)
    await topics.ensure(0)
    notifier = Notifier(settings.dsn, [store.STATUS_CHANNEL, store.OUTBOX_CHANNEL])
    await notifier.start()
    publisher = clients.Publisher(
        settings.kafka, bundle_limit=settings.bundle_limit, client_id=settings.server_id
    )
    reader = clients.Reader(
        settings.kafka,
        settings.topics.server_group,
        client_id=settings.server_id,
        bundle_limit=settings.bundle_limit,
        stall_after=settings.stall_seconds,
    )
    relay = OutboxRelay(st, publisher, topics, notifier, settings.relay_batch)
    ingester = StatusIngester(
        st, reader, publisher, settings.server_id, settings.ingest_batch, settings.topics.status_topic
    )
    reaper = DeletionReaper(st, settings.deletion_grace)
    writer = SpecWriter(st)
    writer.start()

    limit = settings.grpc_message_limit
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", settings.grpc_reply_limit),
        ]
    )
    source = SourceService(st, notifier, settings, writer)
    stubs.cloudevent_grpc.add_CloudEventServiceServicer_to_server(source, server)
    stubs.source_grpc.add_MaestroSourceServicer_to_server(BatchSourceService(source), server)
    stubs.query_grpc.add_MaestroQueryServicer_to_server(QueryService(st, notifier, topics, settings), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (
            stubs.CLOUDEVENT_SERVICE,
            stubs.QUERY_SERVICE,
            stubs.SOURCE_SERVICE,
            reflection.SERVICE_NAME,
            health.SERVICE_NAME,
        ),
        server,
    )
    port = server.add_insecure_port(f"{settings.host}:{settings.port}")
    if port == 0:
        raise OSError(f"cannot listen on {settings.host}:{settings.port}: is the port in use?")
    await server.start()
    for service in ("", stubs.CLOUDEVENT_SERVICE, stubs.QUERY_SERVICE, stubs.SOURCE_SERVICE):
        await health_servicer.set(service, health_pb2.HealthCheckResponse.SERVING)
    tasks = [
        asyncio.create_task(relay.run(), name="outbox-relay"),
        asyncio.create_task(ingester.run(), name="status-ingest"),
        asyncio.create_task(reaper.run(), name="deletion-reaper"),
    ]
    for task in tasks:
        task.add_done_callback(_report_stopped)
    log.info("maestro server %s serving on %s:%d", settings.server_id, settings.host, port)

    async def close_store() -> None:
        await st.release_outbox()
        await db.close()

    return Running(
        server,
        port,
        relay,
        ingester,
        reaper,
        tasks,
        [
            writer.stop,
            notifier.stop,
            reader.close,
            functools.partial(asyncio.to_thread, publisher.close),
            close_store,
        ],
    )


async def serve(settings: ServerSettings) -> None:
    running = await start(settings)
    try:
        await running.server.wait_for_termination()
    finally:
        await running.stop()
