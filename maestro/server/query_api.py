"""``fleetplane.maestro.v1.MaestroQuery``: consumers, paged bundle lists and the resumable status watch."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import grpc

from maestro.api import errors, queries
from maestro.server import status_stream
from maestro.server.notifier import Notifier
from maestro.server.settings import ServerSettings
from maestro.storage import store as store_mod
from maestro.transport import clients
from maestro.wire import query as wire
from maestro.wire import status_codes, stubs

pb = stubs.query
T = TypeVar("T")


async def _answer(context: grpc.aio.ServicerContext, call: Callable[[], Awaitable[T]]) -> T:
    """Run a handler; a domain error becomes a gRPC status naming the problem."""
    try:
        return await call()
    except errors.MaestroError as exc:
        await context.abort(status_codes.code_for(exc), str(exc))
        raise  # unreachable: abort raises


class QueryService(stubs.query_grpc.MaestroQueryServicer):
    def __init__(
        self, store: store_mod.Store, notifier: Notifier, topics: clients.Topics, settings: ServerSettings
    ) -> None:
        self._store = store
        self._notifier = notifier
        self._topics = topics
        self._settings = settings

    async def CreateConsumer(
        self, request: pb.CreateConsumerRequest, context: grpc.aio.ServicerContext
    ) -> pb.Consumer:
        async def create() -> pb.Consumer:
            consumer = await self._store.create_consumer(request.name, dict(request.labels))
            # The cluster's partition must exist before its agent is assigned to it.
            await self._topics.ensure(consumer.spec_placement.partition)
            return wire.consumer_to_pb(consumer)

        return await _answer(context, create)

    async def GetConsumer(
        self, request: pb.GetConsumerRequest, context: grpc.aio.ServicerContext
    ) -> pb.Consumer:
        async def get() -> pb.Consumer:
            return wire.consumer_to_pb(await self._store.get_consumer(request.name))

        return await _answer(context, get)

    async def ListConsumers(
        self, request: pb.ListConsumersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListConsumersResponse:
        async def list_() -> pb.ListConsumersResponse:
            page = await self._store.list_consumers(
                wire.consumer_filter(request), queries.page_size(request.page_size), request.page_token
            )
            return pb.ListConsumersResponse(
                items=[wire.consumer_to_pb(c) for c in page.items], next_page_token=page.next_page_token
            )

        return await _answer(context, list_)

    async def UpdateConsumerLabels(
        self, request: pb.UpdateConsumerLabelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.Consumer:
        async def update() -> pb.Consumer:
            return wire.consumer_to_pb(
                await self._store.update_consumer_labels(request.name, dict(request.labels))
            )

        return await _answer(context, update)

    async def DeleteConsumer(
        self, request: pb.DeleteConsumerRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteConsumerResponse:
        async def delete() -> pb.DeleteConsumerResponse:
            await self._store.delete_consumer(request.name)
            return pb.DeleteConsumerResponse()

        return await _answer(context, delete)

    async def GetResourceBundle(
        self, request: pb.GetResourceBundleRequest, context: grpc.aio.ServicerContext
    ) -> pb.ResourceBundle:
        async def get() -> pb.ResourceBundle:
            return wire.record_to_pb(await self._store.get_resource(wire.resource_id(request.id)))

        return await _answer(context, get)

    async def ListResourceBundles(
        self, request: pb.ListResourceBundlesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListResourceBundlesResponse:
        async def list_() -> pb.ListResourceBundlesResponse:
            # Taken before the page: a watch from it cannot miss a change made while listing.
            token = await self._store.current_status_token() if not request.page_token else ""
            page = await self._store.list_resources_raw(
                wire.resource_filter(request),
                queries.page_size(request.page_size),
                request.page_token,
                with_spec=not request.without_spec,
                with_status=not request.without_status,
            )
            response = pb.ListResourceBundlesResponse(
                next_page_token=page.next_page_token, watch_resume_token=token
            )
            wire.add_raw_records(response.items, page.items)
            return response

        return await _answer(context, list_)

    async def CountResourceBundles(
        self, request: pb.CountResourceBundlesRequest, context: grpc.aio.ServicerContext
    ) -> pb.CountResourceBundlesResponse:
        async def count() -> pb.CountResourceBundlesResponse:
            return pb.CountResourceBundlesResponse(
                count=await self._store.count_resources(wire.resource_filter(request))
            )

        return await _answer(context, count)

    async def WatchStatusBatches(
        self, request: pb.WatchStatusRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.StatusChanges]:
        async for changes in self._watched(request, context):
            yield pb.StatusChanges(changes=changes or ())  # an empty one is the keep-alive

    async def WatchStatus(
        self, request: pb.WatchStatusRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.StatusChange]:
        async for changes in self._watched(request, context):
            if changes is None:
                # An empty change is the keep-alive: clients skip it (no resource id).
                yield pb.StatusChange()
            for change in changes or ():
                yield change

    async def _watched(
        self, request: pb.WatchStatusRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[list[pb.StatusChange] | None]:
        """The changes after the request's token as stored together; ``None`` when a keep-alive is due."""
        try:
            queries.parse_resume_token(request.resume_token)
        except errors.MaestroError as exc:
            await context.abort(status_codes.code_for(exc), str(exc))
        where = wire.resource_filter(request)
        next_beat = time.monotonic() + self._settings.heartbeat_seconds
        follow = status_stream.follow_batches(self._store, self._notifier, request.resume_token, where)
        async for changes in follow:
            if changes:
                yield [wire.status_change_to_pb(change) for change in changes]
            elif time.monotonic() >= next_beat:
                yield None
                next_beat = time.monotonic() + self._settings.heartbeat_seconds
