"""The status ingester: what it keeps when storing fails, whom it binds each event to, and how a
poison report in a batch is rejected alone, never retried.

Cases: storing a batch fails (the database is away); the same batch is handled again until it is
stored, and only then committed; the loop goes on with the next batch. Every report goes to the
store with the slot of the status topic it came on (the store refuses one for a bundle of another
consumer), a refused report confirms no deletion, and a resync request naming another consumer
than the topic's is dropped and counted, never answered; an event on a topic that is no
cluster's status topic is rejected. A batch holding a report with a NUL character, one with the
largest sequence id and one with a header that is not UTF-8 stores its other reports, counts the
three as rejected, quarantines them with their reasons and is committed once; reports the database
refuses are counted and quarantined, and their Deleted condition deletes nothing. A batch that
fails while the database answers is handled one event at a time: the one that keeps failing is
quarantined after its attempts (with the failure as its reason), the others are handled, and the
batch is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
import uuid

from maestro.api import bundle_events, bundles, consumers, events, quarantine
from maestro.server.ingest import StatusIngester
from maestro.storage import store
from maestro.transport import binding, cloudevents, layout
from maestro.transport.messages import Incoming, Outgoing
from tests.unit.maestro import fixtures
from tests.unit.maestro.kafkafakes import RecordingReader

NAMES = layout.Layout("t")


def incoming(offset: int) -> Incoming:
    return Incoming("t.status.0", 0, offset, "c1", {}, None, b"{}")


async def test_a_batch_that_failed_to_store_is_handled_again_then_committed() -> None:
    first, second = [incoming(0), incoming(1)], [incoming(2)]
    reader = RecordingReader([first, second])
    ingester = StatusIngester(Quarantine(reachable=False), reader, None, "s1", names=NAMES)  # type: ignore[arg-type]
    handled: list[list[int]] = []

    async def handle(messages: list[Incoming]) -> None:
        handled.append([m.offset for m in messages])
        if len(handled) == 1:
            raise ConnectionError("database went away")

    ingester.handle = handle  # type: ignore[method-assign]
    task = asyncio.create_task(ingester.run())
    try:
        for _ in range(200):
            if len(reader.committed) == 2:
                break
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert handled == [[0, 1], [0, 1], [2]]
    assert [[m.offset for m in batch] for batch in reader.committed] == [[0, 1], [2]]


class Quarantine:
    """The store's quarantine, and whether the database answers."""

    def __init__(self, *, reachable: bool = True) -> None:
        self._reachable = reachable
        self.held: list[quarantine.StatusMessage] = []

    async def reachable(self) -> bool:
        return self._reachable

    async def quarantine_statuses(self, held: list[quarantine.StatusMessage]) -> None:
        self.held += held

    async def consumers_by_slot(self, slots: list[int]) -> dict[int, consumers.Consumer]:
        return {0: consumers.Consumer("cluster1", slot=0)}


class RecordingStore(Quarantine):
    """Records what the ingester stores; refuses (as the database would) the reports named."""

    def __init__(self, refuse: frozenset[uuid.UUID] = frozenset()) -> None:
        super().__init__()
        self.batches: list[list[bundles.StatusReport]] = []
        self.limits: list[int | None] = []
        self.hard_deleted: list[uuid.UUID] = []
        self._refuse = refuse

    async def ingest_statuses(
        self,
        batch: list[bundles.StatusReport],
        slots: list[int | None] | None = None,
        *,
        max_sequence: int | None = None,
    ) -> store.IngestResult:
        self.batches.append(list(batch))
        self.limits.append(max_sequence)
        stored = [store.StoredStatus(r, i) for i, r in enumerate(batch) if r.resource_id not in self._refuse]
        rejected = [(r, "refused") for r in batch if r.resource_id in self._refuse]
        return store.IngestResult(stored, [], rejected=rejected)

    async def hard_delete(self, ids: list[uuid.UUID]) -> list[bundles.StatusChange]:
        self.hard_deleted.extend(ids)
        return []


def report_message(
    offset: int, *, sequence: int | None = None, message: str = "ok", condition: str = "Applied"
) -> Incoming:
    rid = uuid.UUID(int=offset + 1)
    status = bundles.BundleStatus(
        conditions=[{"type": condition, "status": "True", "reason": "R", "message": message}],
        sequence_id=time.time_ns() if sequence is None else sequence,
    )
    event = bundle_events.status_report_event(
        bundles.StatusReport(rid, "cluster1", 1, status), source="agent-cluster1"
    )
    out = cloudevents.to_message(event, topic=NAMES.status_topic(0), key="cluster1")
    attributes, content_type = binding.decode(out.headers)
    return Incoming(out.topic, 0, offset, "cluster1", attributes, content_type, out.value)


async def test_poison_reports_are_rejected_alone_and_the_rest_of_the_batch_is_stored() -> None:
    not_utf8 = report_message(4)
    bad_headers = binding.decode(
        [
            ("ce_clustername", b"\xff\xfe"),
            *[(f"ce_{k}", v.encode()) for k, v in not_utf8.attributes.items() if k != "clustername"],
        ]
    )
    messages = [
        report_message(0),
        report_message(1, message="a\x00b"),
        report_message(2, sequence=(1 << 63) - 1),
        report_message(3),
        dataclasses.replace(not_utf8, attributes=bad_headers[0]),
    ]
    fake = RecordingStore()
    ingester = StatusIngester(fake, None, None, "s1", names=NAMES)  # type: ignore[arg-type]
    await ingester.handle(messages)
    assert [[r.resource_id.int for r in batch] for batch in fake.batches] == [[1, 4]]
    assert ingester.stats.rejected == 3 and ingester.stats.stored == 2
    assert [(h.offset, h.consumer, h.attempts) for h in fake.held] == [
        (1, "cluster1", 1),
        (2, "cluster1", 1),
        (4, "cluster1", 1),
    ]
    assert "the database" not in fake.held[0].reason and "NUL" in fake.held[0].reason
    assert json.loads(fake.held[2].headers)["attributes"]["clustername"] == "\ufffd\ufffd"
    limit = fake.limits[0]
    assert limit is not None and time.time_ns() < limit <= time.time_ns() + 300 * 10**9


async def test_reports_the_database_refuses_are_counted_and_delete_nothing() -> None:
    refused = report_message(0, condition="Deleted")
    kept = report_message(1, condition="Deleted")
    fake = RecordingStore(refuse=frozenset({uuid.UUID(int=1)}))
    ingester = StatusIngester(fake, None, None, "s1", names=NAMES)  # type: ignore[arg-type]
    await ingester.handle([refused, kept])
    assert ingester.stats.rejected == 1 and ingester.stats.stored == 1
    assert fake.hard_deleted == [uuid.UUID(int=2)]
    assert [(h.resource_id, h.reason) for h in fake.held] == [
        (uuid.UUID(int=1), "the database refused it: refused")
    ]


async def test_an_event_that_keeps_failing_is_quarantined_and_the_rest_is_handled() -> None:
    batch = [report_message(0), report_message(1), report_message(2)]
    reader = RecordingReader([batch])
    fake = RecordingStore()
    ingester = StatusIngester(fake, reader, None, "s1", names=NAMES, attempts=3)  # type: ignore[arg-type]
    handled: list[list[int]] = []
    real = ingester.handle

    async def handle(messages: list[Incoming]) -> None:
        handled.append([m.offset for m in messages])
        if any(m.offset == 1 for m in messages):
            raise ValueError("cannot store this one")
        await real(messages)

    ingester.handle = handle  # type: ignore[method-assign]
    task = asyncio.create_task(ingester.run())
    try:
        for _ in range(300):
            if reader.committed:
                break
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert handled == [[0, 1, 2], [0], [1], [1], [1], [2]]
    assert [(h.offset, h.attempts, h.reason) for h in fake.held] == [
        (1, 3, "ValueError: cannot store this one")
    ]
    assert ingester.stats.quarantined == 1 and ingester.stats.stored == 2
    assert [[m.offset for m in b] for b in reader.committed] == [[0, 1, 2]]


async def test_a_batch_with_poison_is_committed_once() -> None:
    batch = [report_message(0), report_message(1, message="\x00"), report_message(2, sequence=(1 << 63) - 1)]
    reader = RecordingReader([batch])
    fake = RecordingStore()
    ingester = StatusIngester(fake, reader, None, "s1", names=NAMES)  # type: ignore[arg-type]
    task = asyncio.create_task(ingester.run())
    try:
        for _ in range(200):
            if reader.committed:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert len(fake.batches) == 1 and [[m.offset for m in b] for b in reader.committed] == [[0, 1, 2]]


class BindingStore(Quarantine):
    """The store calls the ingester makes: consumers by slot, ingests recorded as sent."""

    def __init__(self, owners: dict[int, consumers.Consumer], foreign: set[uuid.UUID]) -> None:
        super().__init__()
        self.owners = owners
        self.foreign = foreign
        self.ingested: list[tuple[list[bundles.StatusReport], list[int | None] | None]] = []
        self.hard_deleted: list[uuid.UUID] = []

    async def consumers_by_slot(self, slots: list[int]) -> dict[int, consumers.Consumer]:
        return {s: c for s, c in self.owners.items() if s in slots}

    async def ingest_statuses(
        self,
        batch: list[bundles.StatusReport],
        slots: list[int | None] | None = None,
        *,
        max_sequence: int | None = None,
    ) -> store.IngestResult:
        self.ingested.append((list(batch), None if slots is None else list(slots)))
        refused = [store.ForeignStatus(r, "cluster-b") for r in batch if r.resource_id in self.foreign]
        kept = [r for r in batch if r.resource_id not in self.foreign]
        return store.IngestResult([store.StoredStatus(r, 1) for r in kept], [], refused)

    async def hard_delete(self, ids: list[uuid.UUID]) -> list[object]:
        self.hard_deleted += ids
        return []

    async def resources_for_resync(self, consumer: str) -> list[bundles.ResourceBundle]:
        return []


class Published:
    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    async def publish(self, items: list[Outgoing]) -> None:
        self.sent += items


POLICY = consumers.PlacementPolicy(NAMES.spec_topic_base, 1, NAMES.status_topic_base)


def consumer(name: str, slot: int) -> consumers.Consumer:
    return consumers.Consumer(
        name, placement=POLICY.placement(slot), slot=slot, status_topic=NAMES.status_topic(slot)
    )


def on_topic(event: events.CloudEvent, slot: int, offset: int = 0) -> Incoming:
    out = cloudevents.to_message(event, topic=NAMES.status_topic(slot), key="any")
    attributes, content_type = binding.decode(out.headers)
    return Incoming(out.topic, 0, offset, out.key, attributes, content_type, out.value)


def report(rid: uuid.UUID, claimed: str, status: bundles.BundleStatus) -> events.CloudEvent:
    made = bundles.StatusReport(rid, claimed, 1, status, "hub", "")
    return bundle_events.status_report_event(made, source=f"agent-{claimed}")


async def test_each_event_is_bound_to_the_cluster_whose_status_topic_carried_it() -> None:
    a, b = consumer("cluster-a", 3), consumer("cluster-b", 4)
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    owned = BindingStore({3: a, 4: b}, foreign={theirs})
    publisher = Published()
    ingester = StatusIngester(owned, None, publisher, "s1", names=NAMES)  # type: ignore[arg-type]
    deleted = fixtures.status(seq=9, condition="Deleted")
    await ingester.handle(
        [
            # cluster-a reports on its own topic, once about its bundle, once claiming to be b
            on_topic(report(mine, "cluster-a", fixtures.status(seq=1, condition="Deleted")), 3, 0),
            on_topic(report(theirs, "cluster-b", deleted), 3, 1),
            # a resync request for b, and one for a, both on a's topic
            on_topic(bundle_events.spec_resync_request_event("cluster-b", {}, source="agent-a"), 3, 2),
            on_topic(bundle_events.spec_resync_request_event("cluster-a", {}, source="agent-a"), 3, 3),
        ]
    )
    ((batch, slots),) = owned.ingested
    assert [r.resource_id for r in batch] == [mine, theirs] and slots == [3, 3]
    # the store refused the report for b's bundle: it confirms no deletion, and is counted
    assert owned.hard_deleted == [mine]
    assert ingester.stats.foreign == 2 and ingester.stats.stored == 1
    # only a's resync is answered (nothing to send: it holds nothing and the server neither)
    assert ingester.stats.resyncs == 1 and publisher.sent == []


async def test_an_event_on_a_topic_of_no_layout_slot_is_rejected() -> None:
    owned = BindingStore({}, foreign=set())
    ingester = StatusIngester(owned, None, Published(), "s1", names=NAMES)  # type: ignore[arg-type]
    event = report(uuid.uuid4(), "cluster-a", fixtures.status())
    stray = on_topic(event, 3)
    await ingester.handle([dataclasses.replace(stray, topic="t.status.x")])
    assert ingester.stats.rejected == 1 and owned.ingested == []
