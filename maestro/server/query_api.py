"""``fleetplane.maestro.v1.MaestroQuery``: consumers, paged bundle lists, the resumable status watch
and revoked certificates.

Every call is authenticated and authorized (``auth.Guard``): consumers and revocations are the
admin's; a source reads its own works (a source certificate asking for every source gets its own);
an agent reads its own consumer record alone.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import grpc

from maestro.api import errors, queries, revocations
from maestro.server import status_stream, streams
from maestro.server.auth import Guard
from maestro.server.callers import Caller, stream_owner
from maestro.server.client_certificates import RevocationList
from maestro.server.consumer_admin import ConsumerAdmin
from maestro.server.notifier import Notifier
from maestro.server.permissions import Verb, cluster_may_read
from maestro.server.settings import ServerSettings
from maestro.server.store_away import abort_if_store_away
from maestro.storage import store as store_mod
from maestro.wire import query as wire
from maestro.wire import status_codes, stubs
from trust.identity import Kind

pb = stubs.query
T = TypeVar("T")


async def _answer(context: grpc.aio.ServicerContext, call: Callable[[], Awaitable[T]]) -> T:
    """Run a handler; a domain error becomes a gRPC status naming the problem."""
    try:
        return await call()
    except errors.MaestroError as exc:
        await context.abort(status_codes.code_for(exc), str(exc))
        raise  # unreachable: abort raises
    except Exception as exc:
        await abort_if_store_away(context, exc)
        raise


class QueryService(stubs.query_grpc.MaestroQueryServicer):
    def __init__(
        self,
        store: store_mod.Store,
        notifier: Notifier,
        settings: ServerSettings,
        guard: Guard,
        consumers: ConsumerAdmin,
        revoked: RevocationList | None = None,
        limits: streams.StreamLimits | None = None,
    ) -> None:
        self._store = store
        self._notifier = notifier
        self._consumers = consumers
        self._settings = settings
        self._guard = guard
        self._revoked = revoked
        self._limits = limits or streams.StreamLimits(settings.max_streams, settings.max_streams_per_caller)

    async def _admin(self, context: grpc.aio.ServicerContext, what: str) -> Caller:
        caller = await self._guard.authenticate(context)
        await self._guard.require_admin(context, caller, what)
        return caller

    async def CreateConsumer(
        self, request: pb.CreateConsumerRequest, context: grpc.aio.ServicerContext
    ) -> pb.Consumer:
        await self._admin(context, "register consumers")

        async def create() -> pb.Consumer:
            return wire.consumer_to_pb(await self._consumers.create(request.name, dict(request.labels)))

        return await _answer(context, create)

    async def GetConsumer(
        self, request: pb.GetConsumerRequest, context: grpc.aio.ServicerContext
    ) -> pb.Consumer:
        caller = await self._guard.authenticate(context)
        identity = caller.identity
        if identity is not None and identity.kind is Kind.CLUSTER and identity.name == request.name:
            # An agent reads its own record, while it is still the incarnation it was issued for.
            found = await _answer(context, lambda: self._store.get_consumer(request.name))
            if not cluster_may_read(identity, request.name, found.slot):
                await context.abort(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"the certificate of {identity} is for an earlier registration of cluster "
                    f"{request.name!r} (now #{found.slot}): the cluster was registered again; "
                    "give its agent a certificate of the new registration",
                )
            return wire.consumer_to_pb(found)
        await self._guard.require_admin(context, caller, f"read consumer {request.name!r}")

        async def get() -> pb.Consumer:
            return wire.consumer_to_pb(await self._store.get_consumer(request.name))

        return await _answer(context, get)

    async def ListConsumers(
        self, request: pb.ListConsumersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListConsumersResponse:
        await self._admin(context, "list consumers")

        async def list_() -> pb.ListConsumersResponse:
            page = await self._store.list_consumers(
                wire.consumer_filter(request),
                queries.page_size(request.page_size, self._settings.max_page_size),
                request.page_token,
                queries.page_bytes(request.page_bytes, self._settings.max_page_bytes),
            )
            return pb.ListConsumersResponse(
                items=[wire.consumer_to_pb(c) for c in page.items], next_page_token=page.next_page_token
            )

        return await _answer(context, list_)

    async def UpdateConsumerLabels(
        self, request: pb.UpdateConsumerLabelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.Consumer:
        await self._admin(context, "label consumers")

        async def update() -> pb.Consumer:
            return wire.consumer_to_pb(
                await self._store.update_consumer_labels(request.name, dict(request.labels))
            )

        return await _answer(context, update)

    async def DeleteConsumer(
        self, request: pb.DeleteConsumerRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteConsumerResponse:
        await self._admin(context, "delete consumers")

        async def delete() -> pb.DeleteConsumerResponse:
            await self._consumers.delete(request.name)
            return pb.DeleteConsumerResponse()

        return await _answer(context, delete)

    async def GetResourceBundle(
        self, request: pb.GetResourceBundleRequest, context: grpc.aio.ServicerContext
    ) -> pb.ResourceBundle:
        caller = await self._guard.authenticate(context)
        record = await _answer(context, lambda: self._store.get_resource(wire.resource_id(request.id)))
        await self._guard.require(context, caller, Verb.LIST, record.bundle.source)
        return wire.record_to_pb(record)

    async def ListResourceBundles(
        self, request: pb.ListResourceBundlesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListResourceBundlesResponse:
        where = await self._visible(context, request)

        async def list_() -> pb.ListResourceBundlesResponse:
            # Taken before the page: a watch from it cannot miss a change made while listing.
            token = await self._store.current_status_token() if not request.page_token else ""
            page = await self._store.list_resources_raw(
                where,
                queries.page_size(request.page_size, self._settings.max_page_size),
                request.page_token,
                queries.page_bytes(request.page_bytes, self._settings.max_page_bytes),
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
        where = await self._visible(context, request)

        async def count() -> pb.CountResourceBundlesResponse:
            return pb.CountResourceBundlesResponse(count=await self._store.count_resources(where))

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
        caller = await self._guard.authenticate(context)
        where = await self._visible(context, request, caller)
        try:
            queries.parse_resume_token(request.resume_token)
            release = self._limits.acquire(context, "WatchStatus", stream_owner(caller))
        except errors.MaestroError as exc:
            await context.abort(status_codes.code_for(exc), str(exc))
        try:
            next_beat = time.monotonic() + self._settings.heartbeat_seconds
            follow = status_stream.follow_batches(self._store, self._notifier, request.resume_token, where)
            async for changes in follow:
                if changes:
                    yield [wire.status_change_to_pb(change) for change in changes]
                elif time.monotonic() >= next_beat:
                    # A watch outlives certificates, tokens and permissions: each beat asks again.
                    await self._guard.recheck(context, caller, Verb.LIST, where.source)
                    yield None
                    next_beat = time.monotonic() + self._settings.heartbeat_seconds
        finally:
            release()

    async def _visible(
        self,
        context: grpc.aio.ServicerContext,
        request: pb.ListResourceBundlesRequest | pb.CountResourceBundlesRequest | pb.WatchStatusRequest,
        caller: Caller | None = None,
    ) -> queries.ResourceFilter:
        """The filter a read runs with: narrowed to the caller's own source where it asked for every
        source and may see only its own; the call refused where it asked for a source not its own."""
        caller = caller or await self._guard.authenticate(context)
        try:
            where = wire.resource_filter(request)
        except errors.MaestroError as exc:
            await context.abort(status_codes.code_for(exc), str(exc))
        source = await self._guard.visible_source(context, caller, where.source)
        return dataclasses.replace(where, source=source)

    async def RevokeCertificate(
        self, request: pb.RevokeCertificateRequest, context: grpc.aio.ServicerContext
    ) -> pb.RevokedCertificate:
        caller = await self._admin(context, "revoke certificates")

        async def revoke() -> pb.RevokedCertificate:
            serial = revocations.parse_serial(request.serial)
            revoked = await self._store.revoke_certificate(serial, request.reason, str(caller))
            if self._revoked is not None:
                self._revoked.add(serial)  # at once here; other replicas on the notification
            return wire.revocation_to_pb(revoked)

        return await _answer(context, revoke)

    async def ListRevokedCertificates(
        self, request: pb.ListRevokedCertificatesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListRevokedCertificatesResponse:
        await self._admin(context, "list revoked certificates")

        async def list_() -> pb.ListRevokedCertificatesResponse:
            found = await self._store.revoked_certificates()
            return pb.ListRevokedCertificatesResponse(items=[wire.revocation_to_pb(r) for r in found])

        return await _answer(context, list_)
