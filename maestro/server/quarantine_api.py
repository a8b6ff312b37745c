"""``fleetplane.maestro.v1.MaestroQuarantine``: the admin's view of quarantined events.

Listing, retrying and dropping are the admin's alone. A retried spec event goes back to the end of
its consumer's outbox (the relay publishes it again); a retried status event is sent to its status
topic again, as the agent sent it, and is deleted from the quarantine only once Kafka acknowledged
it (the same transaction), so a failed retry leaves it where it was.
"""

from __future__ import annotations

import json

import grpc

from maestro.api import errors, quarantine
from maestro.server.auth import Guard
from maestro.storage import store as store_mod
from maestro.transport import binding
from maestro.transport.messages import Outgoing
from maestro.transport.producer import Publisher
from maestro.wire import quarantine as wire
from maestro.wire import status_codes, stubs

pb = stubs.quarantine
MAX_PAGE = 500


def _outgoing(held: store_mod.HeldMessage) -> Outgoing:
    topic, key, headers, value = held
    decoded = json.loads(headers)
    attributes = decoded.get("attributes") or {}
    return Outgoing(
        topic=topic,
        key=key.decode(errors="replace") if key is not None else "",
        headers=binding.encode(attributes, decoded.get("content_type")),
        value=value,
    )


class QuarantineService(stubs.quarantine_grpc.MaestroQuarantineServicer):
    def __init__(self, store: store_mod.Store, publisher: Publisher, guard: Guard) -> None:
        self._store = store
        self._publisher = publisher
        self._guard = guard

    async def _admin(self, context: grpc.aio.ServicerContext, what: str) -> None:
        caller = await self._guard.authenticate(context)
        await self._guard.require_admin(context, caller, what)

    async def ListQuarantined(
        self, request: pb.ListQuarantinedRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListQuarantinedResponse:
        await self._admin(context, "list quarantined events")
        size = request.page_size or MAX_PAGE
        if not 0 < size <= MAX_PAGE:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"page_size: {size} is out of range (give 1 to {MAX_PAGE})"
            )
        found = await self._store.quarantined(request.consumer, max(request.after, 0), size)
        return pb.ListQuarantinedResponse(items=[wire.to_pb(item) for item in found])

    async def RetryQuarantined(
        self, request: pb.QuarantineSelection, context: grpc.aio.ServicerContext
    ) -> pb.RetryQuarantinedResponse:
        await self._admin(context, "retry quarantined events")
        selection = await self._selection(request, context)

        async def send(held: list[store_mod.HeldMessage]) -> None:
            await self._publisher.publish([_outgoing(h) for h in held])

        try:
            done = await self._store.retry_quarantined(selection, send)
        except Exception as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"retrying failed, nothing changed: {exc}")
            raise  # unreachable: abort raises
        return pb.RetryQuarantinedResponse(spec=done.spec, status=done.status, left=done.left)

    async def DropQuarantined(
        self, request: pb.QuarantineSelection, context: grpc.aio.ServicerContext
    ) -> pb.DropQuarantinedResponse:
        await self._admin(context, "drop quarantined events")
        selection = await self._selection(request, context)
        return pb.DropQuarantinedResponse(dropped=await self._store.drop_quarantined(selection))

    async def _selection(
        self, request: pb.QuarantineSelection, context: grpc.aio.ServicerContext
    ) -> quarantine.Selection:
        try:
            return wire.selection_from_pb(request)
        except errors.MaestroError as exc:
            await context.abort(status_codes.code_for(exc), str(exc))
            raise  # unreachable: abort raises
