"""The outbox relay across a broker outage, over a fake outbox and a fake librdkafka producer.

Cases: a batch Kafka does not acknowledge in time is neither acked nor produced again while the
producer may still deliver it; the relay keeps its leases alive while it waits, and acks the rows
once every message is acknowledged; a batch Kafka refused is released at once (not acked) and
published again from its first row; a batch never settled is given up after the guard time and
published again; and the relay loop outlives any failure of one round.
"""

from __future__ import annotations

import asyncio
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
from tests.unit.maestro.kafkafakes import FakeProducer


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

    async def ack_outbox(self, ids: Sequence[int]) -> None:
        gone = {self.rows.pop(i).consumer for i in ids}
        self.leased -= gone


class FakeNotifier:
    async def wait(self, channel: str, timeout: float) -> None:
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
    assert not outbox.rows and not outbox.leased and outbox.releases == 0


async def test_a_refused_batch_is_released_at_once_and_published_again() -> None:
    outbox, producer = FakeOutbox(the_rows()), FakeProducer()
    relay = make_relay(outbox, producer)
    task = asyncio.create_task(relay.relay_once())
    await asyncio.sleep(0.05)
    producer.settle(producer.produced[:1])
    producer.settle(producer.produced[1:], KafkaError(KafkaError._MSG_TIMED_OUT))
    with pytest.raises(PublishError, match="2 failed"):
        await asyncio.wait_for(task, 5)
    assert set(outbox.rows) == {1, 2, 3} and not outbox.leased and outbox.releases == 1
    # The next round publishes every row again, each consumer's from its first.
    again = asyncio.create_task(relay.relay_once())
    await asyncio.sleep(0.05)
    assert [p.value for p in producer.produced[3:]] == [p.value for p in producer.produced[:3]]
    producer.settle(producer.produced[3:])
    assert await asyncio.wait_for(again, 5) == 3
    assert not outbox.rows


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
