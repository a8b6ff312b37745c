"""An asyncio client of a Maestro server for sources: the hub controllers, the CLI's scripts, benchmarks.

Writes go through the upstream-compatible CloudEvents Publish API, or, with ``batch_publish``,
through fleetplane's PublishBatch (a server without it is sent single Publish calls instead); reads
go through the query service. A failed call raises a `maestro.client_errors.MaestroCallError` of the
kind the server's status says, whichever way the event went: callers never see gRPC's types.

Every client says how it authenticates (``Credentials``: a certificate, a token, or plaintext to an
insecure server); there is no default.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from maestro import client_errors
from maestro.api import bundle_events, bundles, consumers, listing, quarantine, queries, revocations
from maestro.wire import channels, stubs
from maestro.wire import cloudevents as wire_events
from maestro.wire import quarantine as wire_quarantine
from maestro.wire import query as wire_query
from maestro.wire.channels import Credentials, CredentialsError

_STATUS_CODES = {code.value[0]: code for code in grpc.StatusCode}
_Pending = tuple[stubs.cloudevent.CloudEvent, int, "asyncio.Future[None]"]  # the event, its size, its outcome
# What one PublishBatch carries at most: a server takes messages of one bundle and its envelope
# (its bundle limit, 1 MiB by default, plus 64 KiB), so a batch stays within the default bundle limit.
BATCH_BYTES = 1024 * 1024


class _PublishBatcher:
    """Sends the events published while earlier batches are in flight as one PublishBatch call.

    At most ``in_flight`` calls are under way: an idle client sends an event at once (in a batch of
    one), a busy one gathers what its callers publish meanwhile, up to ``max_events`` and
    ``max_bytes`` per call (an event larger than that goes alone, as it would in Publish). Each
    caller gets its own event's outcome. A server without PublishBatch gets single Publish calls, and
    so do the events of a batch the server refuses as too large (its bundle limit is below ours).
    """

    def __init__(
        self,
        batch: Callable[[stubs.source.PublishBatchRequest], Awaitable[stubs.source.PublishBatchResponse]],
        single: Callable[[stubs.cloudevent.CloudEvent], Awaitable[object]],
        *,
        in_flight: int = 4,
        max_events: int = 500,
        max_bytes: int = BATCH_BYTES,
    ) -> None:
        self._batch = batch
        self._single = single
        self._in_flight = in_flight
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._pending: list[_Pending] = []
        self._sending: set[asyncio.Task[None]] = set()
        self._supported = True

    async def publish(self, event: stubs.cloudevent.CloudEvent) -> None:
        if not self._supported:
            await self._single(event)
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((event, event.ByteSize(), done))
        self._send_more()
        await done

    def _send_more(self) -> None:
        while self._pending and len(self._sending) < self._in_flight:
            taken, size = 1, self._pending[0][1]
            while taken < min(len(self._pending), self._max_events):
                size += self._pending[taken][1]
                if size > self._max_bytes:
                    break
                taken += 1
            batch, self._pending = self._pending[:taken], self._pending[taken:]
            task = asyncio.create_task(self._send(batch))
            self._sending.add(task)
            task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        self._send_more()

    async def _send(self, batch: list[_Pending]) -> None:
        request = stubs.source.PublishBatchRequest(events=[event for event, _, _ in batch])
        try:
            reply = await self._batch(request)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                self._supported = False
                batch, self._pending = batch + self._pending, []
            elif exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or len(batch) == 1:
                _settle(batch, [exc] * len(batch))
                return
            await asyncio.gather(*(self._send_single(pending) for pending in batch))
            return
        except BaseException as exc:
            _settle(batch, [exc] * len(batch))
            raise
        _settle(batch, [_error(result) for result in reply.results])

    async def _send_single(self, pending: _Pending) -> None:
        try:
            await self._single(pending[0])
        except Exception as exc:
            _settle([pending], [exc])
        else:
            _settle([pending], [None])


def _error(result: stubs.source.PublishResult) -> grpc.aio.AioRpcError | None:
    if result.code == 0:
        return None
    code = _STATUS_CODES.get(result.code, grpc.StatusCode.UNKNOWN)
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=result.message)


def _settle(batch: list[_Pending], outcomes: list[BaseException | None]) -> None:
    for (_, _, done), outcome in zip(batch, outcomes, strict=True):
        if done.done():
            continue  # its caller gave up waiting
        if outcome is None:
            done.set_result(None)
        else:
            done.set_exception(outcome)


@contextlib.contextmanager
def _calling() -> Iterator[None]:
    """Raise a failed call's error as the client's own kind."""
    try:
        yield
    except grpc.aio.AioRpcError as exc:
        raise client_errors.from_code(exc.code().name, exc.details() or "") from exc


class MaestroClient:
    def __init__(
        self,
        address: str,
        *,
        source: str,
        credentials: Credentials,
        message_limit: int = channels.SEND_LIMIT,
        batch_publish: bool = False,
    ) -> None:
        self.source = source
        self.address = address
        self._channel = channels.aio_channel(address, credentials, message_limit=message_limit)
        self._events = stubs.cloudevent_grpc.CloudEventServiceStub(self._channel)
        self._query = stubs.query_grpc.MaestroQueryStub(self._channel)
        self._quarantine = stubs.quarantine_grpc.MaestroQuarantineStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self._watch_batches = True
        self._batcher: _PublishBatcher | None = None
        if batch_publish:
            batch = stubs.source_grpc.MaestroSourceStub(self._channel).PublishBatch
            self._batcher = _PublishBatcher(batch, self._publish_one)

    async def close(self) -> None:
        await self._channel.close()

    async def not_serving(self, timeout: float) -> str | None:
        """Why the server does not serve, as its gRPC health service tells over this client's own
        channel: no answer within ``timeout``, or a replica that says NOT_SERVING (one of its
        background loops stopped: its ``/readyz`` names it). None when it serves."""
        try:
            reply = await self._health.Check(health_pb2.HealthCheckRequest(), timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            return f"the Maestro server at {self.address} does not answer: {exc.code().name}: {exc.details()}"
        if reply.status != health_pb2.HealthCheckResponse.SERVING:
            state = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            return f"the Maestro server at {self.address} says {state} (its /readyz names why)"
        return None

    async def __aenter__(self) -> MaestroClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # Writes (CloudEvents Publish).

    async def publish(self, request: bundles.SpecRequest) -> None:
        event = wire_events.to_pb(bundle_events.spec_request_event(request))
        with _calling():
            if self._batcher is not None:
                await self._batcher.publish(event)
            else:
                await self._publish_one(event)

    async def _publish_one(self, event: stubs.cloudevent.CloudEvent) -> None:
        await self._events.Publish(stubs.cloudevent.PublishRequest(event=event))

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
        with _calling():
            reply = await self._query.CreateConsumer(
                stubs.query.CreateConsumerRequest(name=name, labels=labels or {})
            )
        return wire_query.consumer_from_pb(reply)

    async def get_consumer(self, name: str) -> consumers.Consumer:
        with _calling():
            reply = await self._query.GetConsumer(stubs.query.GetConsumerRequest(name=name))
        return wire_query.consumer_from_pb(reply)

    async def delete_consumer(self, name: str) -> None:
        with _calling():
            await self._query.DeleteConsumer(stubs.query.DeleteConsumerRequest(name=name))

    async def list_consumers(self, labels: Mapping[str, str] | None = None) -> list[consumers.Consumer]:
        """Every consumer (all pages) whose labels include ``labels``."""
        out: list[consumers.Consumer] = []
        token = ""
        while True:
            with _calling():
                reply = await self._query.ListConsumers(
                    stubs.query.ListConsumersRequest(page_token=token, label_selector=labels or {})
                )
            out.extend(wire_query.consumer_from_pb(item) for item in reply.items)
            token = reply.next_page_token
            if not token:
                return out

    async def update_consumer_labels(self, name: str, labels: Mapping[str, str]) -> consumers.Consumer:
        with _calling():
            reply = await self._query.UpdateConsumerLabels(
                stubs.query.UpdateConsumerLabelsRequest(name=name, labels=labels)
            )
        return wire_query.consumer_from_pb(reply)

    async def revoke_certificate(self, serial: int, reason: str = "") -> revocations.Revocation:
        request = stubs.query.RevokeCertificateRequest(
            serial=f"0x{revocations.serial_text(serial)}", reason=reason
        )
        with _calling():
            reply = await self._query.RevokeCertificate(request)
        return wire_query.revocation_from_pb(reply)

    async def revoked_certificates(self) -> list[revocations.Revocation]:
        with _calling():
            reply = await self._query.ListRevokedCertificates(stubs.query.ListRevokedCertificatesRequest())
        return [wire_query.revocation_from_pb(item) for item in reply.items]

    # Quarantined events (admin).

    async def quarantined(self, consumer: str = "") -> list[quarantine.Quarantined]:
        """Every quarantined event (of one consumer, or all), oldest first."""
        found: list[quarantine.Quarantined] = []
        while True:
            request = stubs.quarantine.ListQuarantinedRequest(
                consumer=consumer, after=found[-1].id if found else 0
            )
            with _calling():
                reply = await self._quarantine.ListQuarantined(request)
            found += [wire_quarantine.from_pb(item) for item in reply.items]
            if not reply.items:
                return found

    async def retry_quarantined(self, selection: quarantine.Selection) -> quarantine.Retried:
        with _calling():
            reply = await self._quarantine.RetryQuarantined(wire_quarantine.selection_to_pb(selection))
        return quarantine.Retried(spec=reply.spec, status=reply.status, left=reply.left)

    async def drop_quarantined(self, selection: quarantine.Selection) -> int:
        with _calling():
            reply = await self._quarantine.DropQuarantined(wire_quarantine.selection_to_pb(selection))
        return reply.dropped

    async def get_summary(self, resource_id: uuid.UUID | str) -> listing.BundleSummary:
        """One bundle, its JSON documents left as bytes until asked for."""
        with _calling():
            reply = await self._query.GetResourceBundle(
                stubs.query.GetResourceBundleRequest(id=str(resource_id))
            )
        return wire_query.summary_from_pb(reply)

    async def get(self, resource_id: uuid.UUID) -> bundles.BundleRecord:
        return (await self.get_summary(resource_id)).record()

    async def pages(
        self,
        where: queries.ResourceFilter | None = None,
        page_size: int = 0,
        *,
        with_spec: bool = True,
        with_status: bool = True,
        page_bytes: int = 0,
    ) -> AsyncIterator[listing.BundlePage]:
        """Every page of bundles matching ``where`` (JSON documents left as bytes until asked for;
        each spec empty unless ``with_spec``, each status unless ``with_status``: its sequence, hash
        and version are always there). The first page carries the watch token taken before it. A
        reader that handles each page as it comes holds one page at a time. Each page holds at most
        ``page_size`` bundles and ``page_bytes`` bytes of documents (0: the server's budgets), or
        one bundle larger than that."""
        where = where or queries.ResourceFilter()
        token = ""
        while True:
            request = stubs.query.ListResourceBundlesRequest(
                page_size=page_size,
                page_bytes=page_bytes,
                page_token=token,
                without_spec=not with_spec,
                without_status=not with_status,
                **wire_query.resource_filter_fields(where),
            )
            with _calling():
                reply = await self._query.ListResourceBundles(request)
            yield wire_query.page_from_pb(reply)
            token = reply.next_page_token
            if not token:
                return

    async def count(self, where: queries.ResourceFilter | None = None) -> int:
        """How many bundles match ``where`` (deleting ones included), without listing them."""
        fields = wire_query.resource_filter_fields(where or queries.ResourceFilter())
        with _calling():
            reply = await self._query.CountResourceBundles(stubs.query.CountResourceBundlesRequest(**fields))
        return int(reply.count)

    async def list_summaries(
        self,
        where: queries.ResourceFilter | None = None,
        page_size: int = 0,
        *,
        with_spec: bool = True,
        with_status: bool = True,
    ) -> tuple[list[listing.BundleSummary], str]:
        """Every bundle matching ``where`` (JSON documents left as bytes until asked for; each spec
        empty unless ``with_spec``, each status unless ``with_status``), and the watch token taken
        before the first page."""
        out: list[listing.BundleSummary] = []
        watch_token = ""
        async for page in self.pages(where, page_size, with_spec=with_spec, with_status=with_status):
            watch_token = watch_token or page.watch_resume_token
            out.extend(page.items)
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
        items, token = await self.list_summaries(
            where, page_size, with_spec=with_spec, with_status=with_status
        )
        return [item.record() for item in items], token

    async def watch(
        self, resume_token: str = "", *, source: str = "", consumer: str = ""
    ) -> AsyncIterator[listing.StatusUpdate]:
        """Status changes after ``resume_token``; keep-alives (no resource id) are skipped. They
        come in batches (WatchStatusBatches), or one by one from a server without it."""
        request = stubs.query.WatchStatusRequest(resume_token=resume_token, source=source, consumer=consumer)
        if self._watch_batches:
            try:
                with _calling():
                    async for batch in self._query.WatchStatusBatches(request):
                        for change in batch.changes:
                            yield wire_query.status_update_from_pb(change)
                return
            except client_errors.Unsupported:
                self._watch_batches = False
        with _calling():
            async for change in self._query.WatchStatus(request):
                if change.resource_id:
                    yield wire_query.status_update_from_pb(change)


__all__ = ["BATCH_BYTES", "Credentials", "CredentialsError", "MaestroClient"]
