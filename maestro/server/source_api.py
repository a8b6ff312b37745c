"""``io.cloudevents.v1.CloudEventService``: the source API, wire-compatible with upstream Maestro.

Sources (the hub controllers, or an upstream Maestro source client) Publish spec create/update/
delete requests and status resync requests, and Subscribe to the statuses of their bundles.
Agents here use Kafka, not this service; an agent-style subscription is refused with a message.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator

import grpc
from google.protobuf import empty_pb2

from maestro.api import bundle_events, bundles, errors, events, queries, resync
from maestro.server import status_stream
from maestro.server.notifier import Notifier
from maestro.server.settings import ServerSettings
from maestro.server.spec_writer import SpecWriter
from maestro.storage import store as store_mod
from maestro.wire import cloudevents as wire_events
from maestro.wire import status_codes, stubs

log = logging.getLogger(__name__)


class SourceService(stubs.cloudevent_grpc.CloudEventServiceServicer):
    def __init__(
        self, store: store_mod.Store, notifier: Notifier, settings: ServerSettings, writer: SpecWriter
    ) -> None:
        self._store = store
        self._writer = writer
        self._notifier = notifier
        self._settings = settings
        # Resync answers go to this replica's open streams of the asking source.
        self._streams: dict[str, set[asyncio.Queue[events.CloudEvent]]] = defaultdict(set)

    async def Publish(
        self, request: stubs.cloudevent.PublishRequest, context: grpc.aio.ServicerContext
    ) -> empty_pb2.Empty:
        try:
            if not request.HasField("event"):
                raise errors.InvalidArgument(
                    "event", "the request carries no event", "set PublishRequest.event"
                )
            await self.publish(request.event)
        except errors.MaestroError as exc:
            await context.abort(status_codes.code_for(exc), str(exc))
        return empty_pb2.Empty()

    async def publish(self, pb: stubs.cloudevent.CloudEvent) -> None:
        """Store one published event (a spec request, or answer a status resync request)."""
        event = wire_events.from_pb(pb)
        kind = bundle_events.event_type(event)
        if kind.sub_resource is events.SubResource.STATUS and kind.action is events.Action.RESYNC_REQUEST:
            await self._resync_source(bundle_events.parse_status_resync_request(event))
        else:
            spec = bundle_events.parse_spec_request(event, max_bytes=self._settings.bundle_limit)
            await self._writer.submit(spec)

    async def _resync_source(self, request: bundle_events.SourceResyncRequest) -> None:
        records = await self._store.records_for_source(request.source)
        answer = resync.source_answer(records, request.hashes)
        for record in answer:
            event = bundle_events.status_event(
                record, source=self._settings.server_id, action=events.Action.RESYNC_RESPONSE
            )
            for queue in self._streams.get(request.source, ()):
                queue.put_nowait(event)

    async def Subscribe(
        self, request: stubs.cloudevent.SubscriptionRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[stubs.cloudevent.CloudEvent]:
        # Current upstream clients fail without this header.
        await context.send_initial_metadata((("subscription-id", str(uuid.uuid4())),))
        if not request.source:
            await context.abort(
                grpc.StatusCode.UNIMPLEMENTED,
                "agent subscriptions are served over Kafka here; subscribe with `source` set",
            )
        queue: asyncio.Queue[events.CloudEvent] = asyncio.Queue()
        self._streams[request.source].add(queue)
        token = await self._store.current_status_token()
        next_beat = time.monotonic() + self._settings.heartbeat_seconds
        try:
            where = queries.ResourceFilter(source=request.source)
            async for change in status_stream.follow(self._store, self._notifier, token, where, idle=0.5):
                while not queue.empty():
                    yield wire_events.to_pb(queue.get_nowait())
                if change is not None and change.record.status is not None:
                    yield wire_events.to_pb(self._status_event(change))
                if time.monotonic() >= next_beat:
                    yield wire_events.heartbeat_pb()
                    next_beat = time.monotonic() + self._settings.heartbeat_seconds
        finally:
            self._streams[request.source].discard(queue)

    def _status_event(self, change: bundles.StatusChange) -> events.CloudEvent:
        return bundle_events.status_event(change.record, source=self._settings.server_id)


class BatchSourceService(stubs.source_grpc.MaestroSourceServicer):
    """``PublishBatch``: each event handled as `SourceService.Publish` would, all at once (they
    share the spec writer's transactions), each answered with its own status."""

    def __init__(self, source: SourceService) -> None:
        self._source = source

    async def PublishBatch(
        self, request: stubs.source.PublishBatchRequest, context: grpc.aio.ServicerContext
    ) -> stubs.source.PublishBatchResponse:
        outcomes = await asyncio.gather(
            *(self._source.publish(event) for event in request.events), return_exceptions=True
        )
        results = []
        for outcome in outcomes:
            if isinstance(outcome, errors.MaestroError):
                code = status_codes.code_for(outcome)
                results.append(stubs.source.PublishResult(code=code.value[0], message=str(outcome)))
            elif isinstance(outcome, BaseException):
                raise outcome  # not the event's fault (the store is away...): the call fails
            else:
                results.append(stubs.source.PublishResult())
        return stubs.source.PublishBatchResponse(results=results)
