"""An asyncio client of a Maestro server for sources: the hub controllers, the CLI's scripts, benchmarks.

Writes go through the upstream-compatible CloudEvents Publish API; reads through the query service.
A failed call raises ``grpc.aio.AioRpcError`` carrying the server's code and message.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import grpc

from maestro.api import bundle_events, bundles, consumers, queries
from maestro.wire import cloudevents as wire_events
from maestro.wire import query as wire_query
from maestro.wire import stubs


class MaestroClient:
    def __init__(self, address: str, *, source: str, message_limit: int = 2 * 1024 * 1024) -> None:
        self.source = source
        self._channel = grpc.aio.insecure_channel(
            address,
            options=[
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                ("grpc.max_send_message_length", message_limit),
            ],
        )
        self._events = stubs.cloudevent_grpc.CloudEventServiceStub(self._channel)
        self._query = stubs.query_grpc.MaestroQueryStub(self._channel)

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> MaestroClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # Writes (CloudEvents Publish).

    async def publish(self, request: bundles.SpecRequest) -> None:
        event = bundle_events.spec_request_event(request)
        await self._events.Publish(stubs.cloudevent.PublishRequest(event=wire_events.to_pb(event)))

    async def apply(
        self,
        consumer: str,
        resource_id: uuid.UUID,
        bundle: bundles.ManifestBundle,
        *,
        metadata: Mapping[str, Any] | None = None,
        version: int = 0,
        create: bool = True,
    ) -> None:
        action = bundles.SpecAction.CREATE if create else bundles.SpecAction.UPDATE
        await self.publish(
            bundles.SpecRequest(
                action, resource_id, consumer, self.source, version, bundle, dict(metadata or {})
            )
        )

    async def delete(self, consumer: str, resource_id: uuid.UUID, *, version: int = 0) -> None:
        await self.publish(
            bundles.SpecRequest(bundles.SpecAction.DELETE, resource_id, consumer, self.source, version)
        )

    # Reads (MaestroQuery).

    async def create_consumer(self, name: str, labels: Mapping[str, str] | None = None) -> consumers.Consumer:
        reply = await self._query.CreateConsumer(
            stubs.query.CreateConsumerRequest(name=name, labels=labels or {})
        )
        return wire_query.consumer_from_pb(reply)

    async def get_consumer(self, name: str) -> consumers.Consumer:
        return wire_query.consumer_from_pb(
            await self._query.GetConsumer(stubs.query.GetConsumerRequest(name=name))
        )

    async def delete_consumer(self, name: str) -> None:
        await self._query.DeleteConsumer(stubs.query.DeleteConsumerRequest(name=name))

    async def get(self, resource_id: uuid.UUID) -> bundles.BundleRecord:
        reply = await self._query.GetResourceBundle(stubs.query.GetResourceBundleRequest(id=str(resource_id)))
        return wire_query.record_from_pb(reply)

    async def pages(
        self,
        where: queries.ResourceFilter | None = None,
        page_size: int = 0,
        *,
        with_spec: bool = True,
        with_status: bool = True,
    ) -> AsyncIterator[stubs.query.ListResourceBundlesResponse]:
        """Every page of bundles matching ``where``, as the wire sends them (JSON documents left as
        bytes; each spec empty unless ``with_spec``, each status unless ``with_status``: its
        sequence, hash and version are always there). The first page carries the watch token taken
        before it. A reader that handles each page as it comes holds one page at a time."""
        where = where or queries.ResourceFilter()
        token = ""
        while True:
            reply = await self._query.ListResourceBundles(
                stubs.query.ListResourceBundlesRequest(
                    page_size=page_size,
                    page_token=token,
                    without_spec=not with_spec,
                    without_status=not with_status,
                    **wire_query.resource_filter_fields(where),
                )
            )
            yield reply
            token = reply.next_page_token
            if not token:
                return

    async def count(self, where: queries.ResourceFilter | None = None) -> int:
        """How many bundles match ``where`` (deleting ones included), without listing them."""
        fields = wire_query.resource_filter_fields(where or queries.ResourceFilter())
        reply = await self._query.CountResourceBundles(stubs.query.CountResourceBundlesRequest(**fields))
        return int(reply.count)

    async def list_messages(
        self,
        where: queries.ResourceFilter | None = None,
        page_size: int = 0,
        *,
        with_spec: bool = True,
        with_status: bool = True,
    ) -> tuple[list[stubs.query.ResourceBundle], str]:
        """Every bundle matching ``where`` as the wire sends it (JSON documents left as bytes; each
        spec empty unless ``with_spec``, each status unless ``with_status``), and the watch token
        taken before the first page."""
        out: list[stubs.query.ResourceBundle] = []
        watch_token = ""
        async for reply in self.pages(where, page_size, with_spec=with_spec, with_status=with_status):
            watch_token = watch_token or reply.watch_resume_token
            out.extend(reply.items)
        return out, watch_token

    async def list(
        self,
        where: queries.ResourceFilter | None = None,
        page_size: int = 0,
        *,
        with_spec: bool = True,
        with_status: bool = True,
    ) -> tuple[list[bundles.BundleRecord], str]:
        """Every bundle matching ``where`` (all pages), decoded, and the watch token of the listing;
        without ``with_spec`` each record's manifests are empty, without ``with_status`` its status
        is ``None`` (not sent)."""
        items, token = await self.list_messages(
            where, page_size, with_spec=with_spec, with_status=with_status
        )
        return [wire_query.record_from_pb(item) for item in items], token

    async def watch(
        self, resume_token: str = "", *, source: str = "", consumer: str = ""
    ) -> AsyncIterator[stubs.query.StatusChange]:
        """Status changes after ``resume_token``; keep-alives (no resource id) are skipped."""
        stream = self._query.WatchStatus(
            stubs.query.WatchStatusRequest(resume_token=resume_token, source=source, consumer=consumer)
        )
        async for change in stream:
            if change.resource_id:
                yield change
