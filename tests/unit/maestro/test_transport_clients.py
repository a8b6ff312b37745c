"""The Kafka clients' edges around a broker restart, over fake librdkafka handles.

Cases: an error event in the middle of a consumed batch is logged and the messages around it are
still handed over (the consumer's position is already past them: raising would lose them for
good), while a fatal one raises; a publish tracks its own messages, not the producer's whole queue,
so a flush timeout says how many of *its* messages are pending and a later wait sees them
delivered; `deliver` waits a broker outage out without sending anything twice, sends again only
what Kafka definitely refused for a transient reason, and raises on a permanent refusal; an
assigned reader whose consumer hands out nothing while the broker holds more is started afresh at
the next offset it would hand out (asking a fresh consumer if the stuck one cannot answer), and
one that is caught up, cannot ask the broker, or does not watch is left alone; a group member
restarts only when the group's committed offsets lag the broker and stopped moving, and one
subscribed by pattern watches every topic the pattern matches. Kafka's authorizer refusing a
write, a read or a commit is permanent: `AuthorizationError`, never retried, and a read refusal is
raised only after the messages before it are handed out.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from localinfra import ports
from maestro.transport import consumer as consumer_mod
from maestro.transport import layout
from maestro.transport.connection import KafkaSettings
from maestro.transport.consumer import Reader
from maestro.transport.delivery import Delivery
from maestro.transport.errors import AuthorizationError, PublishError
from maestro.transport.messages import Incoming, Outgoing
from maestro.transport.producer import Publisher
from tests.unit.maestro import kafkafakes
from tests.unit.maestro.kafkafakes import FakeConsumer, FakeMessage, FakeProducer


def outgoing(n: int, partition: int | None = 0) -> list[Outgoing]:
    return [Outgoing("t.spec", "c1", [], f"m{i}".encode(), partition) for i in range(n)]


def test_an_error_event_in_a_batch_does_not_drop_its_messages(caplog: pytest.LogCaptureFixture) -> None:
    batch = [
        FakeMessage(10),
        FakeMessage(11),
        FakeMessage(-1, KafkaError(KafkaError._TRANSPORT, "broker went away")),
        FakeMessage(12),
    ]
    reader = kafkafakes.reader(FakeConsumer([batch]))
    with caplog.at_level(logging.WARNING):
        got = reader.poll_batch_sync(500, 0.1)
    assert [m.offset for m in got] == [10, 11, 12]
    assert "broker went away" in caplog.text


def test_a_fatal_consumer_error_raises() -> None:
    fatal = KafkaError(KafkaError._FENCED, "fenced", fatal=True)
    reader = kafkafakes.reader(FakeConsumer([[FakeMessage(1), FakeMessage(-1, fatal)]]))
    with pytest.raises(KafkaException):
        reader.poll_batch_sync(500, 0.1)


def test_a_timed_out_publish_counts_its_own_messages_and_settles_later() -> None:
    producer = FakeProducer()
    publisher = kafkafakes.publisher(producer)
    other = publisher.send_sync(outgoing(5, partition=1))  # another caller's, never answered here
    with pytest.raises(PublishError, match="0 failed, 2 unacknowledged"):
        publisher.publish_sync(outgoing(2), timeout=0.05)
    mine = publisher.send_sync(outgoing(3))
    assert not publisher.wait_sync(mine, 0.05) and mine.pending == 3
    # The broker is back: the queued messages are delivered, whoever polls.
    producer.settle(producer.unsettled())
    assert publisher.wait_sync(other, 1.0)
    assert mine.settled and mine.ok and sorted(mine.delivered) == [0, 1, 2]


def test_a_refusal_reported_to_another_callers_poll_still_fails_the_publish() -> None:
    producer = FakeProducer()
    publisher = kafkafakes.publisher(producer)
    mine = publisher.send_sync(outgoing(2))
    producer.settle(producer.produced[:1], KafkaError(KafkaError._MSG_TIMED_OUT))
    producer.settle(producer.produced[1:])
    other = publisher.send_sync(outgoing(1, partition=1))
    producer.settle(producer.produced[2:])
    assert publisher.wait_sync(other, 1.0)  # served every report, mine included
    assert mine.settled and not mine.ok
    assert [item.value for item in mine.failed_items()] == [b"m0"]
    assert "1 failed, 0 unacknowledged" in str(mine.error())


def test_a_message_the_producer_refuses_at_once_counts_as_failed() -> None:
    producer = FakeProducer()
    producer.refuse = KafkaError(KafkaError._UNKNOWN_PARTITION, "unknown partition")
    delivery = kafkafakes.publisher(producer).send_sync(outgoing(2))
    assert delivery.settled and len(delivery.failed) == 2 and not producer.produced
    assert producer.refreshes == 1  # the metadata was read again once, in case it was stale


async def test_a_partition_added_after_the_producer_read_the_metadata_is_produced_to() -> None:
    # A newly registered cluster's partition: the producer's metadata (refreshed by itself only
    # every few minutes) does not know it yet.
    producer = FakeProducer()
    producer.refuse = KafkaError(KafkaError._UNKNOWN_PARTITION, "unknown partition")
    producer.known_after_refresh = True
    publisher = kafkafakes.publisher(producer)
    try:
        delivery = await publisher.send(outgoing(2, partition=7))
        assert not delivery.failed and len(producer.produced) == 2 and producer.refreshes == 1
    finally:
        publisher.close(timeout=0.1)


async def test_deliver_waits_out_an_outage_and_sends_again_only_what_was_refused() -> None:
    producer = FakeProducer()
    publisher = kafkafakes.publisher(producer)
    task = asyncio.create_task(publisher.deliver(outgoing(3), what="test"))
    await asyncio.sleep(0.2)
    # Broker away: nothing settles, nothing is produced twice.
    assert len(producer.produced) == 3 and not task.done()
    first = list(producer.produced)
    producer.settle(first[:2])
    producer.settle(first[2:], KafkaError(KafkaError._MSG_TIMED_OUT))
    for _ in range(200):
        if len(producer.produced) == 4:
            break
        await asyncio.sleep(0.05)
    assert [p.value for p in producer.produced] == [b"m0", b"m1", b"m2", b"m2"]
    producer.settle(producer.produced[3:])
    await asyncio.wait_for(task, 5)


async def test_an_async_publish_is_woken_by_its_own_delivery_reports() -> None:
    producer = FakeProducer()
    publisher = kafkafakes.publisher(producer)
    try:
        waiting = asyncio.create_task(publisher.publish(outgoing(3), timeout=5.0))
        await asyncio.sleep(0.05)
        assert not waiting.done() and len(producer.produced) == 3
        other = await publisher.send(outgoing(1, partition=1))
        producer.settle(producer.produced[:3])  # the broker answers for the first call's messages
        await asyncio.wait_for(waiting, 1.0)
        assert not other.settled
        with pytest.raises(PublishError, match="0 failed, 1 unacknowledged"):
            await publisher.publish(outgoing(1), timeout=0.05)
        producer.settle(producer.unsettled())
        assert await publisher.wait(other, 1.0) and other.ok
    finally:
        publisher.close(timeout=0.1)


async def test_a_wait_cancelled_as_its_delivery_settles_is_cancelled() -> None:
    """The agent stopped while a status report was being acknowledged must stop: a wait that
    swallowed the cancellation (as `asyncio.wait_for` does on 3.11) left it running forever."""
    cancelled = 0
    for spins in range(4):  # cancel at each step of the wake-up that follows the acknowledgement
        delivery = Delivery(outgoing(1))
        waiting = asyncio.create_task(delivery.settled_within(30))
        await asyncio.sleep(0)
        delivery.record(0, None)
        for _ in range(spins):
            await asyncio.sleep(0)
        if waiting.done():
            assert waiting.result() is True
            continue
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        cancelled += 1
    assert cancelled, "some cancellation must land while the wake-up is under way"


async def test_deliver_raises_on_a_permanent_refusal() -> None:
    producer = FakeProducer()
    publisher = kafkafakes.publisher(producer)
    task = asyncio.create_task(publisher.deliver(outgoing(1), what="test"))
    await asyncio.sleep(0.05)
    producer.settle(producer.produced, KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
    with pytest.raises(PublishError, match="1 failed"):
        await asyncio.wait_for(task, 5)


async def test_deliver_reports_an_authorization_refusal_as_permanent() -> None:
    producer = FakeProducer()
    publisher = kafkafakes.publisher(producer)
    task = asyncio.create_task(publisher.deliver(outgoing(2), what="test"))
    await asyncio.sleep(0.05)
    producer.settle(producer.produced, KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))
    with pytest.raises(AuthorizationError, match=r"writing to t\.spec: TOPIC_AUTHORIZATION_FAILED"):
        await asyncio.wait_for(task, 5)
    assert len(producer.produced) == 2, "a refusal is never sent again"


def test_a_refused_read_raises_once_the_messages_before_it_are_handed_out() -> None:
    refused = KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "Topic authorization failed")
    reader = kafkafakes.reader(
        FakeConsumer(
            [
                [FakeMessage(1), FakeMessage(-1, refused, topic_="other.spec.3")],
                [FakeMessage(-1, refused, topic_="other.spec.3")],
            ]
        )
    )
    assert [m.offset for m in reader.poll_batch_sync(500, 0.1)] == [1]
    with pytest.raises(AuthorizationError, match=r"reading other\.spec\.3") as caught:
        reader.poll_batch_sync(500, 0.1)
    assert (
        caught.value.error is not None and caught.value.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    )


def test_a_commit_refused_at_once_is_permanent() -> None:
    consumer = FakeConsumer()

    def commit(offsets: list[object], asynchronous: bool) -> None:
        raise KafkaException(KafkaError(KafkaError.GROUP_AUTHORIZATION_FAILED))

    consumer.commit = commit  # type: ignore[attr-defined]
    reader = kafkafakes.reader(consumer)
    message = Incoming("t.spec.0", 0, 4, None, {}, None, b"")
    with pytest.raises(AuthorizationError, match="committing offsets as group group"):
        reader.commit_sync([message])


def test_a_commit_never_waits_and_one_refused_later_fails_the_next_poll() -> None:
    consumer = FakeConsumer()
    calls: list[bool] = []

    def commit(offsets: list[object], asynchronous: bool) -> None:
        calls.append(asynchronous)

    consumer.commit = commit  # type: ignore[attr-defined]
    reader = kafkafakes.reader(consumer)
    reader.commit_sync([Incoming("t.spec.0", 0, 4, None, {}, None, b"")])
    assert calls == [True]
    # The broker's answer arrives while the consumer polls: a transient failure is only logged ...
    reader._committed_cb(KafkaError(KafkaError.REQUEST_TIMED_OUT), [])
    assert reader.poll_batch_sync(10, 0.0) == []
    # ... a refusal stops the reader, as a refused read does.
    reader._committed_cb(KafkaError(KafkaError.GROUP_AUTHORIZATION_FAILED), [])
    with pytest.raises(AuthorizationError, match="committing offsets as group group"):
        reader.poll_batch_sync(10, 0.0)


def test_a_member_that_never_closes_is_left_behind_when_started_afresh(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stuck, fresh = FakeConsumer(), FakeConsumer()
    release = threading.Event()
    stuck.close = lambda: release.wait(30)  # type: ignore[assignment,method-assign,return-value]
    reader = kafkafakes.reader(stuck)
    reader.subscribe(["t.status"])
    monkeypatch.setattr(consumer_mod, "CLOSE_WAIT", 0.1)
    monkeypatch.setattr(consumer_mod, "Consumer", lambda config: fresh)
    started = time.monotonic()
    reader.restart_sync()
    release.set()
    assert time.monotonic() - started < 5
    assert reader.restarts == 1 and fresh.subscribed == ["t.status"]


def test_a_pattern_subscription_watches_every_topic_it_matches() -> None:
    consumer = FakeConsumer()
    consumer.topics = ["p.status.0", "p.status.7", "p.spec.0", "q.status.1", "p.status.x"]
    consumer.group_committed, consumer.end_offset = {0: 3}, 3
    reader = kafkafakes.reader(consumer, stall_after=0.0)
    reader.subscribe([layout.Layout("p").status_pattern])
    assert [(tp.topic, tp.partition) for tp in reader._subscribed(consumer, 1.0)] == [
        ("p.status.0", 0),
        ("p.status.0", 1),
        ("p.status.7", 0),
        ("p.status.7", 1),
    ]


def test_where_a_reader_of_thousands_of_partitions_stands_takes_two_requests() -> None:
    consumer = FakeConsumer()
    consumer.topics = [f"p.status.{n}" for n in range(3000)]
    consumer.partitions, consumer.end_offset = 1, 101
    consumer.group_committed = {0: 99}
    reader = kafkafakes.reader(consumer, stall_after=0.0)
    reader.subscribe([layout.Layout("p").status_pattern])
    behind = reader.behind_sync()
    assert len(behind) == 3000 and behind[("p.status.42", 0)] == (99, 101)
    assert consumer.offset_requests == 2, "start and end offsets, each in one batched request"


def poll_for(reader: Reader, seconds: float) -> list[Incoming]:
    got: list[Incoming] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got.extend(reader.poll_batch_sync(500, 0.0))
        time.sleep(0.01)
    return got


@pytest.mark.parametrize("wedged", [False, True], ids=["answers", "wedged"])
def test_a_stuck_assigned_consumer_is_started_afresh_at_the_next_offset(
    wedged: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    stuck = FakeConsumer([[FakeMessage(5), FakeMessage(6)]], committed=5)
    reader = kafkafakes.reader(stuck, stall_after=0.1)
    reader.assign([("t.spec", 0)])
    assert stuck.assigned == [("t.spec", 0, 5)]
    fresh, probe = FakeConsumer([[FakeMessage(7)]]), FakeConsumer()
    made = [probe, fresh] if wedged else [fresh]
    monkeypatch.setattr(consumer_mod, "Consumer", lambda config: made.pop(0))
    if wedged:
        # The stuck consumer cannot even answer for its end offsets: a fresh one is asked.
        stuck.broker_away = True
        probe.end_offset = 9
    assert [m.offset for m in reader.poll_batch_sync(500, 0.0)] == [5, 6]
    # The broker holds offsets up to 9, but the consumer hands out nothing: it is stuck.
    stuck.end_offset = 9
    got = poll_for(reader, 0.5)
    assert reader.restarts == 1 and stuck.closed
    assert fresh.assigned == [("t.spec", 0, 7)], "restarted exactly where it stopped: no loss, no repeat"
    assert [m.offset for m in got] == [7]
    assert probe.closed == wedged and not fresh.closed


@pytest.mark.parametrize("case", ["caught-up", "broker-away", "no-watch"])
def test_an_idle_consumer_is_left_alone_when_it_is_not_behind(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    consumer = FakeConsumer(committed=3)
    consumer.end_offset = 3 if case == "caught-up" else 10
    consumer.broker_away = case == "broker-away"
    reader = kafkafakes.reader(consumer, stall_after=None if case == "no-watch" else 0.05)
    probes: list[FakeConsumer] = []

    def probe(config: object) -> FakeConsumer:
        probes.append(FakeConsumer())
        probes[-1].broker_away = True  # the broker is away for a fresh consumer too
        return probes[-1]

    monkeypatch.setattr(consumer_mod, "Consumer", probe)
    reader.assign([("t.spec", 0)])
    poll_for(reader, 0.3)
    assert reader.restarts == 0 and not consumer.closed
    assert all(p.closed for p in probes) and bool(probes) == (case == "broker-away")


def test_a_group_member_restarts_only_when_the_group_makes_no_progress(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    stuck = FakeConsumer()
    stuck.group_committed, stuck.end_offset = {0: 4, 1: 7}, 7
    reader = kafkafakes.reader(stuck, stall_after=10.0)
    reader.subscribe(["t.status"])
    fresh = FakeConsumer()
    monkeypatch.setattr(consumer_mod, "Consumer", lambda config: fresh)

    def idle_for(seconds: float) -> None:
        for _ in range(int(seconds)):
            reader.poll_batch_sync(500, 0.0)
            clock[0] += 1.0

    # Another member is reading partition 0: its committed offset moves between checks.
    for committed in (4, 5, 6):
        stuck.group_committed[0] = committed
        idle_for(11)
    assert reader.restarts == 0
    # Nobody reads it any more: the member leaves and joins again with a fresh consumer.
    idle_for(11)
    assert reader.restarts == 1 and stuck.closed and fresh.subscribed == ["t.status"]


def test_a_group_member_cut_off_from_its_coordinator_restarts_at_the_first_look(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [100.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    stuck = FakeConsumer()
    stuck.group_committed, stuck.end_offset = {0: 4, 1: 7}, 7

    def no_coordinator(partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        raise KafkaException(KafkaError(KafkaError._TIMED_OUT))

    stuck.committed = no_coordinator  # type: ignore[method-assign]
    reader = kafkafakes.reader(stuck, stall_after=10.0)
    reader.subscribe(["t.status"])
    # A fresh consumer reaches the coordinator: the group is behind and nobody moves it.
    probe, fresh = FakeConsumer(), FakeConsumer()
    probe.group_committed, probe.end_offset = {0: 4, 1: 7}, 7
    made = [probe, fresh]
    monkeypatch.setattr(consumer_mod, "Consumer", lambda config: made.pop(0))
    for _ in range(12):
        reader.poll_batch_sync(500, 0.0)
        clock[0] += 1.0
    assert reader.restarts == 1 and stuck.closed and probe.closed
    assert fresh.subscribed == ["t.status"]


def test_an_idle_group_member_that_is_caught_up_is_left_alone() -> None:
    consumer = FakeConsumer()
    consumer.group_committed, consumer.end_offset = {0: 7, 1: 7}, 7
    reader = kafkafakes.reader(consumer, stall_after=0.05)
    reader.subscribe(["t.status"])
    poll_for(reader, 0.3)
    assert reader.restarts == 0 and not consumer.closed


def test_closing_a_publisher_whose_broker_is_gone_drops_its_queue_and_tells_the_senders() -> None:
    # Nothing listens on the port: the messages can never be delivered. The producer's own close
    # would wait for them until the delivery timeout; ours hands them back as failed.
    publisher = Publisher(KafkaSettings.insecure(f"127.0.0.1:{ports.free_port()}"), client_id="closing")
    delivery = publisher.send_sync(outgoing(3, partition=None))

    publisher.close(timeout=0.2)

    assert delivery.settled and not delivery.delivered
    assert sorted(i for i, _ in delivery.failed) == [0, 1, 2]
    assert {err.code() for _, err in delivery.failed} == {KafkaError._PURGE_QUEUE}


async def test_a_publisher_dropped_without_close_stops_serving_its_reports() -> None:
    before = set(threading.enumerate())
    publisher = kafkafakes.publisher(FakeProducer())
    await publisher.send(outgoing(1))
    (serving,) = [t for t in threading.enumerate() if t not in before and t.name == "kafka-reports"]
    del publisher
    gc.collect()
    serving.join(5.0)
    assert not serving.is_alive()
