"""The status ingester: agents' events from Kafka into PostgreSQL, in batches.

Every server replica reads every cluster's status topic in one consumer group (subscribed by
pattern: a new cluster's topic joins within the reader's metadata refresh, or at once on the
replica that registered it). A batch of reports is stored in one round trip (stale sequences
dropped in SQL), confirmed deletions are hard-deleted, and an agent's resync request is answered
on its own spec topic. Offsets are committed only after the batch is stored, so a crash re-reads
rather than loses; storing a report twice is a no-op.

An event is bound to the cluster whose status topic it came on, never to what its payload claims:
Kafka's ACLs let only that cluster's principal write there. A report for a bundle of another
consumer, and a resync request naming another consumer, are dropped (logged and counted in
``IngestStats.foreign``), never stored or answered.

Each event is settled on its own: one that does not decode, or that the database refuses for what
it holds, is quarantined at once (`maestro.api.quarantine`); when a batch fails otherwise while the
database answers, its events are handled one by one and one that fails `attempts` times is
quarantined, so one event never holds up its partition. While the database is away nothing is
counted against any event: the batch is handled again until it answers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from maestro.api import bundle_events, bundles, consumers, errors, events, lifecycle, quarantine, resync
from maestro.storage import store as store_mod
from maestro.transport import cloudevents, layout
from maestro.transport.consumer import Reader
from maestro.transport.messages import Incoming
from maestro.transport.producer import Publisher

log = logging.getLogger(__name__)

# At most one read of the broker's topics this often when clusters are registered in a burst.
TOPICS_READ_EVERY = 2.0


@dataclass
class IngestStats:
    stored: int = 0
    dropped: int = 0
    rejected: int = 0
    resyncs: int = 0
    #: events about another consumer than the one whose status topic carried them
    foreign: int = 0
    #: events set aside in the quarantine
    quarantined: int = 0


class StatusIngester:
    def __init__(
        self,
        store: store_mod.Store,
        reader: Reader,
        publisher: Publisher,
        server_id: str,
        batch: int = 2000,
        names: layout.Layout = layout.DEFAULT,
        *,
        sequence_ahead: timedelta = lifecycle.DEFAULT_SEQUENCE_AHEAD,
        attempts: int = quarantine.DEFAULT_ATTEMPTS,
    ) -> None:
        self._store = store
        self._reader = reader
        self._publisher = publisher
        self._server_id = server_id
        self._batch = batch
        self._names = names
        self._sequence_ahead = sequence_ahead
        self._attempts = attempts
        self.stats = IngestStats()
        self._topics_changed = False
        self._refreshing: asyncio.Task[None] | None = None

    async def topics_added(self) -> None:
        """A consumer was registered: read its status topic soon, not at the next metadata refresh.

        Registrations in a burst share reads: each read lists every topic of the broker and may
        rebalance the group, so one is made at most every `TOPICS_READ_EVERY` seconds.
        """
        self._topics_changed = True
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.create_task(self._read_topics(), name="status-topics")

    def close(self) -> None:
        if self._refreshing is not None:
            self._refreshing.cancel()

    async def _read_topics(self) -> None:
        while self._topics_changed:
            self._topics_changed = False
            try:
                await asyncio.to_thread(self._reader.refresh_topics_sync)
            except Exception as exc:  # the periodic refresh picks the topic up anyway
                log.warning("reading the list of status topics failed: %s", exc)
            await asyncio.sleep(TOPICS_READ_EVERY)

    async def run(self) -> None:
        self._reader.subscribe([self._names.status_pattern])
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
            await self.settle(messages)
            try:
                await self._reader.commit(messages)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("committing status offsets failed (the next commit covers them): %s", exc)

    async def settle(self, messages: list[Incoming]) -> None:
        """Handle ``messages``; a batch that fails while the database answers is handled one event
        at a time, and an event failing `attempts` times is quarantined."""
        if await self._tries(messages, until_down=False) is None:
            return
        for message in messages:
            failures = 0
            while (failed := await self._tries([message], until_down=True)) is not None:
                failures += 1
                if failures >= self._attempts:
                    await self._set_aside([(message, failed, failures)])
                    break

    async def _tries(self, messages: list[Incoming], *, until_down: bool) -> str | None:
        """Handle ``messages``, again and again while the database is away; None once handled, or
        why it failed while the database answered (the events' own fault)."""
        pause = 0.5
        while True:
            try:
                await self.handle(messages)
                return None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
                if await self._store.reachable():
                    log.warning("handling %d status event(s) failed: %s", len(messages), reason)
                    return reason
                log.warning("status ingest failed with the database away; handling again in %.1fs", pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 10.0)

    async def _set_aside(self, failed: list[tuple[Incoming, str, int]]) -> None:
        """Store events in the quarantine; until that works (the database away), try again."""
        slots = sorted({s for m, _, _ in failed if (s := self._names.status_slot(m.topic)) is not None})
        pause = 0.5
        while True:
            try:
                owners = await self._store.consumers_by_slot(slots) if slots else {}
                await self._store.quarantine_statuses(
                    [self._held(message, reason, tries, owners) for message, reason, tries in failed]
                )
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("quarantining %d status event(s) failed, trying again: %s", len(failed), exc)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 10.0)
        self.stats.quarantined += len(failed)
        for message, reason, _ in failed:
            log.error(
                "status event at %s[%d]@%d quarantined: %s",
                message.topic,
                message.partition,
                message.offset,
                reason,
            )

    def _held(
        self, message: Incoming, reason: str, tries: int, owners: dict[int, consumers.Consumer]
    ) -> quarantine.StatusMessage:
        slot = self._names.status_slot(message.topic)
        owner = owners.get(slot) if slot is not None else None
        try:
            resource_id: uuid.UUID | None = uuid.UUID(message.attributes.get(events.RESOURCE_ID, ""))
        except ValueError:
            resource_id = None
        headers = {"attributes": message.attributes, "content_type": message.content_type}
        return quarantine.StatusMessage(
            consumer=owner.name if owner is not None else "",
            resource_id=resource_id,
            event_type=message.attributes.get("type", ""),
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=message.key.encode(errors="surrogateescape") if message.key is not None else None,
            headers=json.dumps(headers).encode(),
            payload=message.value,
            reason=reason,
            attempts=tries,
        )

    async def handle(self, messages: list[Incoming]) -> None:
        reports: list[bundles.StatusReport] = []
        carried: list[Incoming] = []
        slots: list[int] = []
        poison: list[tuple[Incoming, str, int]] = []
        resyncs: list[tuple[int, bundle_events.AgentResyncRequest]] = []
        # One clock reading bounds the whole batch's sequence ids, here and in storage.
        now_ns = time.time_ns()
        for message in messages:
            slot = self._names.status_slot(message.topic)
            try:
                if slot is None:
                    raise errors.InvalidArgument("topic", f"{message.topic} is no cluster's status topic")
                event = cloudevents.from_message(message)
                kind = bundle_events.event_type(event)
                if (
                    kind.sub_resource is events.SubResource.SPEC
                    and kind.action is events.Action.RESYNC_REQUEST
                ):
                    resyncs.append((slot, bundle_events.parse_spec_resync_request(event)))
                else:
                    reports.append(
                        bundle_events.parse_status_report(
                            event, now_ns=now_ns, sequence_ahead=self._sequence_ahead
                        )
                    )
                    slots.append(slot)
                    carried.append(message)
            except errors.MaestroError as exc:
                # Decoding it again gives the same answer: set it aside at once.
                self.stats.rejected += 1
                poison.append((message, f"malformed: {exc}", 1))
        if reports:
            refused = await self._ingest(
                reports, slots, lifecycle.sequence_limit(now_ns, self._sequence_ahead)
            )
            sources = {id(report): message for report, message in zip(reports, carried, strict=True)}
            poison += [(sources[id(r)], f"the database refused it: {why}", 1) for r, why in refused]
        if poison:
            await self._set_aside(poison)
        if resyncs:
            owners = await self._store.consumers_by_slot(sorted({slot for slot, _ in resyncs}))
            for slot, request in resyncs:
                owner = owners.get(slot)
                if owner is None or owner.name != request.consumer:
                    self.stats.foreign += 1
                    log.warning(
                        "dropping a resync request for consumer %s read from the status topic of %s",
                        request.consumer,
                        owner.name if owner else f"slot {slot} (no consumer)",
                    )
                    continue
                await self._answer_resync(owner, request)

    async def _ingest(
        self, reports: list[bundles.StatusReport], slots: list[int], max_sequence: int
    ) -> list[tuple[bundles.StatusReport, str]]:
        """Store the reports; returns the ones the database refused, with why."""
        result = await self._store.ingest_statuses(reports, slots, max_sequence=max_sequence)
        self.stats.stored += len(result.stored)
        self.stats.dropped += len(result.dropped)
        self.stats.rejected += len(result.rejected)
        if result.foreign:
            self.stats.foreign += len(result.foreign)
            first = result.foreign[0]
            log.warning(
                "dropping %d status report(s) for bundles of other consumers than their status "
                "topic's (e.g. bundle %s of %s, sent as %s)",
                len(result.foreign),
                first.report.resource_id,
                first.owner,
                first.report.consumer,
            )
        # Only reports bound to the bundle's own consumer may confirm its deletion.
        refused = {id(f.report) for f in result.foreign} | {id(report) for report, _ in result.rejected}
        deleted = [
            r.resource_id for r in reports if id(r) not in refused and lifecycle.confirms_deletion(r.status)
        ]
        if deleted:
            await self._store.hard_delete(deleted)
        return result.rejected

    async def _answer_resync(
        self, consumer: consumers.Consumer, request: bundle_events.AgentResyncRequest
    ) -> None:
        self.stats.resyncs += 1
        server = await self._store.resources_for_resync(consumer.name)
        answer = resync.agent_answer(server, request.versions)
        out = []
        for item in answer:
            event = self._resync_event(item, consumer.name)
            out.append(
                cloudevents.to_message(
                    event,
                    topic=consumer.spec_placement.topic,
                    key=consumer.name,
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
