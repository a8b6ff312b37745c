"""``io.cloudevents.v1.CloudEventService``: the source API, wire-compatible with upstream Maestro.

Sources (the hub controllers, or an upstream Maestro source client) Publish spec create/update/
delete requests and status resync requests, and Subscribe to the statuses of their bundles.
Agents here use Kafka, not this service; an agent-style subscription is refused with a message.
Every call is authenticated, and every event's source must be one the caller may publish as
(``auth.Guard``).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator

import grpc
from google.protobuf import empty_pb2

from maestro.api import bundle_events, bundles, errors, events, queries, resync
from maestro.server import status_stream, streams
from maestro.server.auth import Guard
from maestro.server.callers import stream_owner
from maestro.server.hub_reviews import HubUnavailable
from maestro.server.notifier import Notifier
from maestro.server.permissions import Verb, refusal
from maestro.server.settings import ServerSettings
from maestro.server.spec_writer import SpecWriter
from maestro.server.store_away import abort_if_store_away
from maestro.storage import store as store_mod
from maestro.wire import cloudevents as wire_events
from maestro.wire import status_codes, stubs

log = logging.getLogger(__name__)


class SourceService(stubs.cloudevent_grpc.CloudEventServiceServicer):
    def __init__(
        self,
        store: store_mod.Store,
        notifier: Notifier,
        settings: ServerSettings,
        writer: SpecWriter,
        guard: Guard,
        limits: streams.StreamLimits | None = None,
    ) -> None:
        self._store = store
        self.guard = guard
        self._writer = writer
        self._notifier = notifier
        self._settings = settings
        self._limits = limits or streams.StreamLimits(settings.max_streams, settings.max_streams_per_caller)
        # Resync answers go to this replica's open streams of the asking source.
        self._streams: dict[str, set[streams.Backlog[events.CloudEvent]]] = {}

    async def Publish(
        self, request: stubs.cloudevent.PublishRequest, context: grpc.aio.ServicerContext
    ) -> empty_pb2.Empty:
        caller = await self.guard.authenticate(context)
        try:
            if not request.HasField("event"):
                raise errors.InvalidArgument(
                    "event", "the request carries no event", "set PublishRequest.event"
                )
            source = event_source(request.event)
            await self.guard.require(context, caller, Verb.PUBLISH, source)
            await self.publish(request.event)
        except errors.MaestroError as exc:
            await context.abort(status_codes.code_for(exc), str(exc))
        except Exception as exc:
            await abort_if_store_away(context, exc)
            raise
        return empty_pb2.Empty()

    async def publish(self, pb: stubs.cloudevent.CloudEvent) -> None:
        """Store one published event (a spec request, or answer a status resync request); the
        caller has been allowed to publish as the event's source."""
        event = wire_events.from_pb(pb)
        kind = bundle_events.event_type(event)
        if kind.sub_resource is events.SubResource.STATUS and kind.action is events.Action.RESYNC_REQUEST:
            await self._resync_source(bundle_events.parse_status_resync_request(event))
        else:
            spec = bundle_events.parse_spec_request(event, max_bytes=self._settings.bundle_limit)
            await self._writer.submit(spec)

    async def _resync_source(self, request: bundle_events.SourceResyncRequest) -> None:
        records = await self._store.records_for_source(request.source)
        answer = [
            bundle_events.status_event(
                record, source=self._settings.server_id, action=events.Action.RESYNC_RESPONSE
            )
            for record in resync.source_answer(records, request.hashes)
        ]
        for backlog in self._streams.get(request.source, ()):
            if not backlog.overflowed and not backlog.offer(answer):
                log.warning(
                    "a Subscribe stream of source %s has more than %d resync events unsent; ending it",
                    request.source,
                    backlog.limit,
                )

    async def Subscribe(
        self, request: stubs.cloudevent.SubscriptionRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[stubs.cloudevent.CloudEvent]:
        caller = await self.guard.authenticate(context)
        if not request.source:
            await context.abort(
                grpc.StatusCode.UNIMPLEMENTED,
                "agent subscriptions are served over Kafka here; subscribe with `source` set",
            )
        await self.guard.require(context, caller, Verb.SUBSCRIBE, request.source)
        # Current upstream clients fail without this header.
        await context.send_initial_metadata((("subscription-id", str(uuid.uuid4())),))
        where = queries.ResourceFilter(source=request.source)
        try:
            queries.check_resource_filter(where)
            release = self._limits.acquire(context, "Subscribe", stream_owner(caller))
        except errors.MaestroError as exc:
            await context.abort(status_codes.code_for(exc), str(exc))
        backlog: streams.Backlog[events.CloudEvent] = streams.Backlog(self._settings.stream_backlog)
        self._streams.setdefault(request.source, set()).add(backlog)
        try:
            token = await self._store.current_status_token()
            next_beat = time.monotonic() + self._settings.heartbeat_seconds
            async for change in status_stream.follow(self._store, self._notifier, token, where, idle=0.5):
                while (event := backlog.pop()) is not None:
                    yield wire_events.to_pb(event)
                if backlog.overflowed:
                    await context.abort(
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f"this stream fell more than {backlog.limit} resync events behind: its client "
                        "reads too slowly (subscribe again and send a status resync request, or raise "
                        "the server's --stream-backlog)",
                    )
                if change is not None and change.record.status is not None:
                    yield wire_events.to_pb(self._status_event(change))
                if time.monotonic() >= next_beat:
                    # A stream outlives certificates, tokens and permissions: each beat asks again.
                    await self.guard.recheck(context, caller, Verb.SUBSCRIBE, request.source)
                    yield wire_events.heartbeat_pb()
                    next_beat = time.monotonic() + self._settings.heartbeat_seconds
        finally:
            release()
            held = self._streams.get(request.source)
            if held is not None:
                held.discard(backlog)
                if not held:
                    del self._streams[request.source]

    def _status_event(self, change: bundles.StatusChange) -> events.CloudEvent:
        return bundle_events.status_event(change.record, source=self._settings.server_id)


def event_source(pb: stubs.cloudevent.CloudEvent) -> str:
    """The source an event acts as: what the caller must be allowed to publish as."""
    if not pb.source:
        raise errors.InvalidArgument("source", "is empty", "set the event source to the source's id")
    return pb.source


class BatchSourceService(stubs.source_grpc.MaestroSourceServicer):
    """``PublishBatch``: each event handled as `SourceService.Publish` would, all at once (they
    share the spec writer's transactions), each answered with its own status."""

    def __init__(self, source: SourceService) -> None:
        self._source = source

    async def PublishBatch(
        self, request: stubs.source.PublishBatchRequest, context: grpc.aio.ServicerContext
    ) -> stubs.source.PublishBatchResponse:
        guard = self._source.guard
        caller = await guard.authenticate(context)
        # Each source once: a batch is mostly one source's events, and each event asking the hub
        # would be hundreds of reviews for one answer.
        verdicts: dict[str, Exception | None] = {}
        for source in sorted({event.source for event in request.events if event.source}):
            try:
                if await guard.allows(caller, Verb.PUBLISH, source):
                    verdicts[source] = None
                else:
                    verdicts[source] = _Refused(refusal(caller, Verb.PUBLISH, source))
            except HubUnavailable as exc:
                verdicts[source] = exc
        outcomes = await asyncio.gather(
            *(self._publish_checked(event, verdicts) for event in request.events), return_exceptions=True
        )
        results = []
        for outcome in outcomes:
            if isinstance(outcome, _Refused | HubUnavailable):
                code = (
                    grpc.StatusCode.PERMISSION_DENIED
                    if isinstance(outcome, _Refused)
                    else grpc.StatusCode.UNAVAILABLE
                )
                results.append(stubs.source.PublishResult(code=code.value[0], message=str(outcome)))
            elif isinstance(outcome, errors.MaestroError):
                code = status_codes.code_for(outcome)
                results.append(stubs.source.PublishResult(code=code.value[0], message=str(outcome)))
            elif isinstance(outcome, BaseException):
                # Not the event's fault (the store is away...): the call fails.
                await abort_if_store_away(context, outcome)
                raise outcome
            else:
                results.append(stubs.source.PublishResult())
        return stubs.source.PublishBatchResponse(results=results)

    async def _publish_checked(
        self, event: stubs.cloudevent.CloudEvent, verdicts: dict[str, Exception | None]
    ) -> None:
        """One event of a batch, refused alone when its source is not the caller's to use."""
        refused = verdicts.get(event_source(event))
        if refused is not None:
            raise refused
        await self._source.publish(event)


class _Refused(Exception):
    """An event of a batch its caller may not publish."""
