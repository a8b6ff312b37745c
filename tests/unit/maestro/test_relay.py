"""The outbox relay across a broker outage, over a fake outbox and a fake librdkafka producer.

Cases: a batch Kafka does not acknowledge in time is neither acked nor produced again while the
producer may still deliver it; the relay keeps its leases alive while it waits, and acks the rows
once every message is acknowledged; in a batch Kafka refused in part the delivered rows are acked
and the rest released at once and published again; a batch never settled is given up after the
guard time and published again; an event Kafka refuses for good is sent alone from its second
try and quarantined after its attempts while its neighbours and the other consumers' events go
through; a stored event that does not decode is quarantined likewise; and the relay loop outlives
any failure of one round.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import Sequence
from datetime import timedelta

import pytest
from confluent_kafka import KafkaError

from maestro.api import bundle_events, events
from maestro.server.relay import OutboxRelay
from maestro.storage.outbox_sql import OutboxEntry
from maestro.transport.errors import PublishError
from tests.unit.maestro import fixtures, kafkafakes
from tests.unit.maestro.kafkafakes import FakeProducer, Produced


def entry(n: int, consumer: str) -> OutboxEntry:
    bundle = fixtures.bundle(rid=uuid.UUID(int=n))
    payload = events.to_json(bundle_events.spec_event(bundle, events.Action.CREATE_REQUEST))
    partition = 0 if consumer == "worker-1" else 1
    return OutboxEntry(n, bundle.id, consumer, "create", payload, fixtures.NOW, "t.spec", partition)


class FakeOutbox:
    """The store's outbox side: rows, per-consumer leases held by this relay, acks."""

    def __init__(self, entries: list[OutboxEntry]) -> None:
        self.rows = {e.id: e for e in entries}
        self.leased: set[str] = set()
        self.claims = 0
        self.renewals = 0
        self.releases = 0
        self.fail_claims = 0
        self.quarantined: dict[int, str] = {}

    async def claim_outbox(
        self, limit: int = 100, lease: timedelta = timedelta(seconds=30)
    ) -> list[OutboxEntry]:
        self.claims += 1
        if self.fail_claims:
            self.fail_claims -= 1
            raise ConnectionError("database went away")
        free = [e for e in sorted(self.rows.values(), key=lambda e: e.id) if e.consumer not in self.leased]
        self.leased |= {e.consumer for e in free}
        return free[:limit]

    async def renew_outbox(self, consumers: Sequence[str], lease: timedelta = timedelta(seconds=30)) -> int:
        self.renewals += 1
        return sum(1 for c in consumers if c in self.leased)

    async def release_outbox(self) -> None:
        self.releases += 1
        self.leased.clear()

    async def settle_outbox(
        self, acked: Sequence[int], refused: Sequence[tuple[int, str]] = (), attempts: int = 5
    ) -> int:
        for i in acked:
            self.rows.pop(i)
        moved = 0
        for i, reason in refused:
            row = self.rows[i] = dataclasses.replace(self.rows[i], attempts=self.rows[i].attempts + 1)
            if row.attempts >= attempts:
                self.quarantined[self.rows.pop(i).id] = reason
                moved += 1
        self.releases += 1
        self.leased.clear()
        return moved


class FakeNotifier:
    def heard(self, channel: str) -> int:
        return 0

    async def wait(self, channel: str, timeout: float, *, heard: int | None = None) -> None:
        await asyncio.sleep(min(timeout, 0.01))


def make_relay(outbox: FakeOutbox, producer: FakeProducer, *, give_up_after: float = 60.0) -> OutboxRelay:
    return OutboxRelay(
        outbox,  # type: ignore[arg-type]
        kafkafakes.publisher(producer),
        FakeNotifier(),  # type: ignore[arg-type]
        renew_every=0.05,
        give_up_after=give_up_after,
    )


def the_rows() -> list[OutboxEntry]:
    return [entry(1, "worker-1"), entry(2, "worker-2"), entry(3, "worker-1")]


async def test_an_unacknowledged_batch_is_waited_for_with_leases_kept_then_acked() -> None:
    outbox, producer = FakeOutbox(the_rows()), FakeProducer()
    relay = make_relay(outbox, producer)
    task = asyncio.create_task(relay.relay_once())
    await asyncio.sleep(0.3)  # the broker is away: no answer for a while
    assert not task.done()
    assert len(producer.produced) == 3, "nothing is produced twice while the first copies may arrive"
    assert outbox.renewals >= 2 and outbox.leased == {"worker-1", "worker-2"}
    assert set(outbox.rows) == {1, 2, 3}
    producer.settle(producer.produced)  # the broker is back
    assert await asyncio.wait_for(task, 5) == 3
    assert not outbox.rows and not outbox.leased


async def test_a_partly_refused_batch_acks_the_delivered_and_publishes_the_rest_again() -> None:
    outbox, producer = FakeOutbox(the_rows()), FakeProducer()
    relay = make_relay(outbox, producer)
    task = asyncio.create_task(relay.relay_once())
    await asyncio.sleep(0.05)
    producer.settle(producer.produced[:1])
    producer.settle(producer.produced[1:], KafkaError(KafkaError._MSG_TIMED_OUT))
    with pytest.raises(PublishError, match="2 of 3 not delivered"):
        await asyncio.wait_for(task, 5)
    assert set(outbox.rows) == {2, 3} and not outbox.leased
    assert all(row.attempts == 0 for row in outbox.rows.values()), "a broker away counts against no event"
    again = asyncio.create_task(relay.relay_once())
    await asyncio.sleep(0.05)
    assert [p.value for p in producer.produced[3:]] == [p.value for p in producer.produced[1:3]]
    producer.settle(producer.produced[3:])
    assert await asyncio.wait_for(again, 5) == 2
    assert not outbox.rows


async def _rounds(relay: OutboxRelay, producer: FakeProducer, poison: uuid.UUID | None, rounds: int) -> None:
    """Run relay rounds, Kafka refusing for good every message of work ``poison``."""
    answered: set[int] = set()
    for _ in range(rounds):
        task = asyncio.create_task(relay.relay_once())
        while not task.done():
            for item in producer.unsettled():
                if id(item) in answered:
                    continue
                answered.add(id(item))
                refused = work_of(item) == poison
                producer.settle([item], KafkaError(KafkaError.MSG_SIZE_TOO_LARGE) if refused else None)
            await asyncio.sleep(0.01)
        with contextlib.suppress(PublishError):
            await task


async def test_an_event_kafka_refuses_for_good_is_quarantined_and_blocks_nothing() -> None:
    rows = [entry(1, "worker-1"), entry(2, "worker-1"), entry(3, "worker-2"), entry(4, "worker-1")]
    outbox, producer = FakeOutbox(rows), FakeProducer()
    relay = make_relay(outbox, producer)
    await _rounds(relay, producer, rows[1].resource_id, rounds=1)
    assert set(outbox.rows) == {2}, "its neighbours and the other consumer's event went through"
    await _rounds(relay, producer, rows[1].resource_id, rounds=4)
    assert not outbox.rows and relay.quarantined == 1
    assert "MSG_SIZE_TOO_LARGE" in outbox.quarantined[2] and outbox.quarantined[2].startswith("t.spec: ")
    # From its second try it went alone: one message per call to the producer.
    assert [work_of(p) for p in producer.produced].count(rows[1].resource_id) == 5


async def test_a_stored_event_that_does_not_decode_is_quarantined() -> None:
    rows = [entry(1, "worker-1"), dataclasses.replace(entry(2, "worker-1"), payload=b"{not json")]
    outbox, producer = FakeOutbox(rows), FakeProducer()
    relay = make_relay(outbox, producer)
    await _rounds(relay, producer, None, rounds=5)
    assert not outbox.rows and "does not decode" in outbox.quarantined[2]
    assert relay.published == 1


def work_of(produced: Produced) -> uuid.UUID:
    return uuid.UUID(dict(produced.headers or [])["ce_resourceid"].decode())


async def test_a_batch_never_settled_is_given_up_and_published_again() -> None:
    outbox, producer = FakeOutbox(the_rows()), FakeProducer()
    relay = make_relay(outbox, producer, give_up_after=0.2)
    with pytest.raises(PublishError, match="0 failed, 3 unacknowledged"):
        await asyncio.wait_for(relay.relay_once(), 5)
    assert set(outbox.rows) == {1, 2, 3} and not outbox.leased


async def test_the_relay_loop_outlives_failed_rounds() -> None:
    outbox, producer = FakeOutbox(the_rows()), FakeProducer()
    outbox.fail_claims = 1
    producer.refuse = KafkaError(KafkaError._UNKNOWN_PARTITION, "metadata not loaded yet")
    relay = make_relay(outbox, producer)
    task = asyncio.create_task(relay.run())
    try:
        for _ in range(100):
            if relay.failed_batches >= 2:
                break
            await asyncio.sleep(0.05)
        assert relay.failed_batches >= 2 and not task.done()
        assert not outbox.leased, "a round that published nothing gives its leases back"
        producer.refuse = None
        for _ in range(100):
            if producer.unsettled():
                producer.settle(producer.unsettled())
            if not outbox.rows:
                break
            await asyncio.sleep(0.05)
        assert not outbox.rows and relay.published == 3
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
