"""The status ingester: agents' events from Kafka into PostgreSQL, in batches.

Every server replica reads the status topic in one consumer group. A batch of reports is stored in
one round trip (stale sequences dropped in SQL), confirmed deletions are hard-deleted, and an
agent's resync request is answered on its own spec partition. Offsets are committed only after the
batch is stored, so a crash re-reads rather than loses; storing a report twice is a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass

from maestro.api import bundle_events, bundles, errors, events, lifecycle, resync
from maestro.storage import store as store_mod
from maestro.transport import clients, cloudevents, layout

log = logging.getLogger(__name__)


@dataclass
class IngestStats:
    stored: int = 0
    dropped: int = 0
    rejected: int = 0
    resyncs: int = 0


class StatusIngester:
    def __init__(
        self,
        store: store_mod.Store,
        reader: clients.Reader,
        publisher: clients.Publisher,
        server_id: str,
        batch: int = 2000,
        topic: str = layout.DEFAULT.status_topic,
    ) -> None:
        self._store = store
        self._reader = reader
        self._publisher = publisher
        self._server_id = server_id
        self._batch = batch
        self._topic = topic
        self.stats = IngestStats()

    async def run(self) -> None:
        self._reader.subscribe([self._topic])
        while True:
            try:
                messages = await self._reader.poll_batch(self._batch, 0.2)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading status events failed; retrying")
                await asyncio.sleep(1)
                continue
            if not messages:
                continue
            # The consumer's position is already past this batch: it is handled here, however many
            # tries that takes (storing a report twice is a no-op), or it would never be read again.
            pause = 0.5
            while True:
                try:
                    await self.handle(messages)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("status ingest failed; handling the batch again in %.1fs", pause)
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 10.0)
            try:
                await self._reader.commit(messages)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("committing status offsets failed (the next commit covers them): %s", exc)

    async def handle(self, messages: list[clients.Incoming]) -> None:
        reports: list[bundles.StatusReport] = []
        resyncs: list[bundle_events.AgentResyncRequest] = []
        for message in messages:
            try:
                event = cloudevents.from_message(message)
                kind = bundle_events.event_type(event)
                if (
                    kind.sub_resource is events.SubResource.SPEC
                    and kind.action is events.Action.RESYNC_REQUEST
                ):
                    resyncs.append(bundle_events.parse_spec_resync_request(event))
                else:
                    reports.append(bundle_events.parse_status_report(event))
            except errors.MaestroError as exc:
                # A malformed event must not block its partition: count it, log it, move on.
                self.stats.rejected += 1
                log.warning(
                    "dropping a malformed agent event at %s[%d]@%d: %s",
                    message.topic,
                    message.partition,
                    message.offset,
                    exc,
                )
        if reports:
            await self._ingest(reports)
        for request in resyncs:
            await self._answer_resync(request)

    async def _ingest(self, reports: list[bundles.StatusReport]) -> None:
        result = await self._store.ingest_statuses(reports)
        self.stats.stored += len(result.stored)
        self.stats.dropped += len(result.dropped)
        deleted = [r.resource_id for r in reports if lifecycle.confirms_deletion(r.status)]
        if deleted:
            await self._store.hard_delete(deleted)

    async def _answer_resync(self, request: bundle_events.AgentResyncRequest) -> None:
        self.stats.resyncs += 1
        try:
            consumer = await self._store.get_consumer(request.consumer)
        except errors.NotFound:
            log.warning("resync request from unknown consumer %s ignored", request.consumer)
            return
        server = await self._store.resources_for_resync(request.consumer)
        answer = resync.agent_answer(server, request.versions)
        out = []
        for item in answer:
            event = self._resync_event(item, request.consumer)
            out.append(
                cloudevents.to_message(
                    event,
                    topic=consumer.spec_placement.topic,
                    key=request.consumer,
                    partition=consumer.spec_placement.partition,
                )
            )
        if out:
            await self._publisher.publish(out)

    def _resync_event(self, item: resync.AgentResyncItem, consumer: str) -> events.CloudEvent:
        if item.bundle is None:
            version = item.agent_version or 0
            return bundle_events.delete_unknown_event(
                uuid.UUID(str(item.resource_id)), consumer, version, source=self._server_id
            )
        return bundle_events.spec_event(item.bundle, events.Action.RESYNC_RESPONSE)
