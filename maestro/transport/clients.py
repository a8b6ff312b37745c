"""confluent-kafka clients for the Maestro server and agents, with asyncio-friendly edges.

confluent-kafka calls block (poll, flush, commit), so every blocking call goes to a thread: the
event loop of a server or agent never waits on Kafka. Publishing is the exception: handing a
message to the producer does not block, and one thread per producer serves its delivery reports
and wakes the waiting coroutines, so a publish costs no thread hop of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from maestro.transport import binding, layout

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outgoing:
    """One event to publish: where it goes and what it carries."""

    topic: str
    key: str
    headers: binding.Headers
    value: bytes | None
    partition: int | None = None


@dataclass(frozen=True)
class Incoming:
    topic: str
    partition: int
    offset: int
    key: str | None
    attributes: dict[str, str]
    content_type: str | None
    value: bytes | None

    @property
    def size(self) -> int:
        """Bytes this message put on the wire for its reader: key, headers and value."""
        return (
            len(self.key or "")
            + len(self.value or b"")
            + sum(len(k) + len(v) for k, v in self.attributes.items())
        )


class PublishError(RuntimeError):
    pass


# How long librdkafka keeps trying to deliver a message (its message.timeout.ms): a message
# produced is either delivered or reported failed within this, whatever the broker does meanwhile.
DELIVERY_TIMEOUT = 300.0

# Delivery errors worth sending the message again for: the broker was away, restarting or moving
# a partition. Anything else (too large, not authorized, ...) will fail again the same way.
_RETRIABLE = frozenset(
    {
        KafkaError._MSG_TIMED_OUT,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._UNKNOWN_PARTITION,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    }
)


def retriable(error: KafkaError) -> bool:
    """Whether sending again can succeed: a transient broker or network condition."""
    return error.code() in _RETRIABLE or (error.retriable() and not error.fatal())


class Delivery:
    """What became of one call's messages: each is pending until Kafka acknowledged or refused it.

    Tracked per call, not by the producer's queue length: a producer shared by several callers
    (the relay and the status ingester) has other messages queued, and a delivery report may be
    served by another caller's poll.
    """

    def __init__(self, items: Sequence[Outgoing]) -> None:
        self.items = list(items)
        self.delivered: list[int] = []
        self.failed: list[tuple[int, KafkaError]] = []
        self._lock = threading.Lock()
        self._settled = threading.Event()
        self._open = len(self.items)
        self._on_settled: list[Callable[[], None]] = []
        if not self._open:
            self._settled.set()

    def _record(self, index: int, err: KafkaError | None) -> None:
        callbacks: list[Callable[[], None]] = []
        with self._lock:
            if err is None:
                self.delivered.append(index)
            else:
                self.failed.append((index, err))
            self._open -= 1
            if self._open == 0:
                self._settled.set()
                callbacks, self._on_settled = self._on_settled, []
        for callback in callbacks:
            callback()

    async def settled_within(self, timeout: float) -> bool:
        """Wait on the event loop, without a thread, until every message is settled or ``timeout``
        passes; somebody must be serving the producer's delivery reports (`Publisher` does)."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def wake() -> None:
            with contextlib.suppress(RuntimeError):  # the loop may be closed by then
                loop.call_soon_threadsafe(_resolve, done)

        with self._lock:
            if self._open == 0:
                return True
            self._on_settled.append(wake)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await done
        return self.settled

    @property
    def pending(self) -> int:
        """Messages Kafka has neither acknowledged nor refused yet (still queued in the producer)."""
        with self._lock:
            return self._open

    @property
    def settled(self) -> bool:
        return self._settled.is_set()

    @property
    def ok(self) -> bool:
        """Every message acknowledged by Kafka."""
        return self.settled and not self.failed

    def failed_items(self) -> list[Outgoing]:
        with self._lock:
            return [self.items[i] for i, _ in sorted(self.failed, key=lambda f: f[0])]

    def error(self) -> PublishError:
        with self._lock:
            failures = [
                f"{self.items[i].topic}[{self.items[i].partition}]: {err}" for i, err in self.failed[:3]
            ]
            return PublishError(f"{len(self.failed)} failed, {self._open} unacknowledged: {failures}")


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _incoming(msg: Message) -> Incoming:
    attributes, content_type = binding.decode(msg.headers())
    key = msg.key()
    return Incoming(
        topic=msg.topic() or "",
        partition=msg.partition() or 0,
        offset=msg.offset() or 0,
        key=key.decode() if isinstance(key, bytes) else key,
        attributes=attributes,
        content_type=content_type,
        value=msg.value(),
    )


def max_message_bytes(bundle_limit: int) -> int:
    """Kafka's message limit derived from the one bundle size limit: the bundle plus headers and slack."""
    return bundle_limit + 64 * 1024


def _serve_reports(producer: Producer, closing: threading.Event) -> None:
    while not closing.is_set():
        producer.poll(0.1)


class _Produced(enum.Enum):
    SENT = enum.auto()  # queued, or refused at once and recorded as failed
    FULL = enum.auto()
    STALE = enum.auto()


class Publisher:
    """An idempotent producer: retries never duplicate or reorder a partition's messages."""

    def __init__(
        self, bootstrap: str, *, bundle_limit: int = 1024 * 1024, client_id: str = "maestro"
    ) -> None:
        self._attach(
            Producer(
                {
                    "bootstrap.servers": bootstrap,
                    "client.id": client_id,
                    "enable.idempotence": True,
                    "acks": "all",
                    "linger.ms": 5,
                    "compression.type": "lz4",
                    "message.max.bytes": max_message_bytes(bundle_limit),
                    "message.timeout.ms": int(DELIVERY_TIMEOUT * 1000),
                }
            )
        )

    def _attach(self, producer: Producer) -> None:
        self._producer = producer
        self._reports: threading.Thread | None = None
        self._closing = threading.Event()

    def _serving(self) -> None:
        """Start the thread that serves delivery reports (once, on the first asynchronous use).
        It holds the producer, not this publisher: one dropped without `close` still stops it."""
        if self._reports is None:
            self._reports = threading.Thread(
                target=_serve_reports, args=(self._producer, self._closing), name="kafka-reports", daemon=True
            )
            weakref.finalize(self, self._closing.set)
            self._reports.start()

    def _produce(self, delivery: Delivery, index: int, *, may_be_stale: bool) -> _Produced:
        """Hand one message to the producer: ``FULL`` while its queue is full (try again later),
        ``STALE`` for a partition its metadata does not know yet when ``may_be_stale`` (refresh
        it, then try again). A message the producer refuses at once otherwise (e.g. its partition
        is unknown while the broker restarts) counts as failed, like one Kafka refused later."""
        item = delivery.items[index]

        def delivered(err: KafkaError | None, msg: Message) -> None:
            delivery._record(index, err)

        kwargs: dict[str, Any] = {
            "key": item.key,
            "value": item.value,
            "headers": item.headers,
            "on_delivery": delivered,
        }
        if item.partition is not None:
            kwargs["partition"] = item.partition
        try:
            self._producer.produce(item.topic, **kwargs)
        except BufferError:
            return _Produced.FULL
        except KafkaException as exc:
            error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
            if may_be_stale and error is not None and error.code() == KafkaError._UNKNOWN_PARTITION:
                return _Produced.STALE
            delivery._record(index, error or KafkaError(KafkaError._FAIL, str(exc)))
        return _Produced.SENT

    def _refresh(self, topic: str) -> None:
        """Read the topic's partitions again. The producer refreshes its metadata only every few
        minutes, and until then refuses a partition added since (a newly registered cluster's)."""
        try:
            self._producer.list_topics(topic, timeout=10)
        except KafkaException as exc:
            log.warning("reading the partitions of %s failed: %s", topic, exc)

    def _producing(self, delivery: Delivery) -> Iterator[tuple[_Produced, str]]:
        """Hand every message of ``delivery`` to the producer; yield what to do before going on
        (``FULL``: let the queue drain; ``STALE``: read that topic's partitions again)."""
        refreshed: set[str] = set()
        for index, item in enumerate(delivery.items):
            while (
                produced := self._produce(delivery, index, may_be_stale=item.topic not in refreshed)
            ) is not _Produced.SENT:
                if produced is _Produced.STALE:
                    refreshed.add(item.topic)
                yield produced, item.topic

    def send_sync(self, items: Sequence[Outgoing]) -> Delivery:
        """Hand every message to the producer; the returned `Delivery` tracks what becomes of them."""
        delivery = Delivery(items)
        for produced, topic in self._producing(delivery):
            if produced is _Produced.FULL:
                self._producer.poll(0.05)
            else:
                self._refresh(topic)
        return delivery

    def wait_sync(self, delivery: Delivery, timeout: float) -> bool:
        """Serve delivery reports until every message of `delivery` is settled or `timeout` passes.

        Returns whether it settled. Unsettled messages stay queued: the producer keeps retrying
        them (at most `DELIVERY_TIMEOUT`), so a later wait sees them delivered or failed.
        """
        deadline = time.monotonic() + timeout
        while not delivery.settled:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._producer.poll(min(0.02, remaining))
        return True

    def publish_sync(self, items: Sequence[Outgoing], timeout: float = 30.0) -> None:
        """Publish and wait until Kafka acknowledged every message; raise if any failed or is pending."""
        delivery = self.send_sync(items)
        if not self.wait_sync(delivery, timeout) or delivery.failed:
            raise delivery.error()

    async def publish(self, items: Sequence[Outgoing], timeout: float = 30.0) -> None:
        """Publish and wait until Kafka acknowledged every message; raise if any failed or is pending."""
        delivery = await self.send(items)
        if not await self.wait(delivery, timeout) or delivery.failed:
            raise delivery.error()

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (for at most ``timeout``), then stop the producer's threads: one
        left to the garbage collector outlives a stopped broker and logs each reconnection.

        What is still undelivered is dropped, its senders told so (as after a crash, the outbox
        and the agents' resync send it again); the producer's own close would wait for it until
        its delivery timeout.
        """
        self._closing.set()
        if self._reports is not None:
            self._reports.join()
        if self._producer.flush(timeout):
            self._producer.purge()
            self._producer.flush(0)
        self._producer.close()

    async def send(self, items: Sequence[Outgoing]) -> Delivery:
        """`send_sync` on the event loop: a full producer queue is waited out without blocking it."""
        self._serving()
        delivery = Delivery(items)
        for produced, topic in self._producing(delivery):
            if produced is _Produced.FULL:
                await asyncio.sleep(0.05)
            else:
                await asyncio.to_thread(self._refresh, topic)
        return delivery

    async def wait(self, delivery: Delivery, timeout: float) -> bool:
        """`wait_sync` on the event loop: whether every message of ``delivery`` settled in time."""
        self._serving()
        return await delivery.settled_within(timeout)

    async def deliver(self, items: Sequence[Outgoing], *, what: str = "events") -> None:
        """Publish and never give up on a transient failure: wait out a broker outage, then send again.

        Each message is sent again only once Kafka has definitely refused it (a retriable error such
        as a delivery timeout), never while the producer may still deliver it: nothing is written
        twice by this call. A permanent error (message too large, not authorized...) raises.
        """
        pending = list(items)
        pause = 0.5
        while pending:
            delivery = await self.send(pending)
            waited = 0.0
            while not await self.wait(delivery, 10.0):
                waited += 10.0
                log.warning(
                    "%s: %d of %d not acknowledged by Kafka after %.0fs; still trying",
                    what,
                    delivery.pending,
                    len(pending),
                    waited,
                )
            permanent = [err for _, err in delivery.failed if not retriable(err)]
            if permanent:
                raise delivery.error()
            if delivery.failed:
                log.warning("%s: sending %s again", what, delivery.error())
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
            pending = delivery.failed_items()


class Reader:
    """A consumer that either joins a group (server replicas) or is assigned partitions (agents).

    A reader can watch its own progress (`stall_after`). librdkafka recovers from a broker
    restart by itself, but its consumer may stay stuck after one (a partition's fetcher, or its
    group membership) while the broker holds messages for it: seen as an agent that never read
    its partition again, and a server that never ingested another status. A reader that has polled
    for `stall_after` seconds without receiving anything while the broker's end offsets are past
    the next offsets to read (an assigned reader's own; a group's committed ones, which must also
    not have moved since the previous check: no other member is reading them either) replaces its
    consumer by a fresh one, as a process restart would: assigned at those offsets, or joining
    the group again (which resumes from the committed offsets).
    """

    def __init__(
        self,
        bootstrap: str,
        group: str,
        *,
        client_id: str = "maestro",
        bundle_limit: int = 1024 * 1024,
        stall_after: float | None = None,
    ) -> None:
        self._config: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": client_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "fetch.max.bytes": max(52428800, max_message_bytes(bundle_limit)),
            "max.partition.fetch.bytes": max_message_bytes(bundle_limit),
            "isolation.level": "read_committed",
            # A dead server replica's status partitions move to the others after 10 s, not 45.
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 3000,
            # Warnings and errors only: a notice per partition-count change (every cluster
            # registered adds partitions) filled the fleet benchmark's progress output.
            "log_level": 4,
        }
        self._consumer = Consumer(self._config)
        self._stall_after = stall_after
        # Assigned partitions -> the next offset this reader hands out (OFFSET_BEGINNING at first
        # if nothing was committed).
        self._next: dict[tuple[str, int], int] = {}
        # Subscribed topics (a group member); and the group's lag seen at the last check.
        self._topics: list[str] = []
        self._group_behind: dict[tuple[str, int], tuple[int, int]] = {}
        self._idle_since: float | None = None
        self._checked_at = 0.0
        self.restarts = 0

    def subscribe(self, topics: Sequence[str]) -> None:
        self._topics = list(topics)
        self._consumer.subscribe(self._topics)

    def assign(self, placements: Sequence[tuple[str, int]]) -> None:
        """Read exactly these partitions, from the offsets committed for this group."""
        partitions = [TopicPartition(t, p) for t, p in placements]
        committed = self._consumer.committed(partitions, timeout=30)
        for tp in committed:
            if tp.offset < 0:
                tp.offset = OFFSET_BEGINNING  # nothing committed yet: read the whole partition
        self._next = {(tp.topic, tp.partition): tp.offset for tp in committed}
        self._consumer.assign(committed)

    def poll_batch_sync(self, max_messages: int, timeout: float) -> list[Incoming]:
        """The next messages; an error event among them is logged, never raised over them.

        `consume` has already moved the position past every message it returned: raising on an
        error event in the batch would drop the messages around it for good (the next batch and
        its commit come after them). Errors librdkafka recovers from by itself (a broker away or
        restarting, an offset reset) are logged. A fatal one raises: the consumer can neither read
        nor commit any more, so the process restarts from its committed offsets.
        """
        messages = self._consumer.consume(max_messages, timeout)
        out = []
        fatal: KafkaError | None = None
        for msg in messages:
            err = msg.error()
            if err is None:
                out.append(_incoming(msg))
            elif err.fatal():
                fatal = fatal or err
            elif err.code() != KafkaError._PARTITION_EOF:
                log.warning("consumer error at %s[%s]: %s", msg.topic(), msg.partition(), err)
        if fatal is not None:
            raise KafkaException(fatal)
        if out:
            self._idle_since = None
            for m in out:
                key = (m.topic, m.partition)
                if key in self._next:
                    self._next[key] = max(self._next[key], m.offset + 1)
        elif self._stall_after is not None and (self._next or self._topics):
            self._watch(self._stall_after)
        return out

    def _watch(self, stall_after: float) -> None:
        now = time.monotonic()
        if self._idle_since is None:
            self._idle_since = now
            return
        if now - self._idle_since < stall_after or now - self._checked_at < stall_after:
            return
        self._checked_at = now
        behind = self.behind_sync()
        if self._topics:
            previous, self._group_behind = self._group_behind, behind
            moved = [k for k, (start, _) in behind.items() if k not in previous or previous[k][0] != start]
            if moved:
                return  # the group's committed offsets moved (or are new to us): not stuck, yet
        if behind:
            log.warning(
                "no message received for %.0fs although the broker holds more (next offset, end "
                "offset: %s); starting the consumer afresh",
                now - self._idle_since,
                ", ".join(f"{t}[{p}]: {n}, {end}" for (t, p), (n, end) in sorted(behind.items())),
            )
            self.restart_sync()
            self._idle_since = time.monotonic()
            self._group_behind = {}

    def behind_sync(self, timeout: float = 5.0) -> dict[tuple[str, int], tuple[int, int]]:
        """Partitions whose end offset at the broker is past the next offset to read.

        The next offset is the one this reader hands out next (assigned), or the group's committed
        offset (subscribed). Asked through the reader's own consumer, or, if that cannot answer
        (a stuck one may not), through a fresh one. Empty if neither can (the broker or the group
        coordinator is away: nothing to judge then).
        """
        found = self._positions(self._consumer, timeout)
        if found is None:
            probe = Consumer(self._config)
            try:
                found = self._positions(probe, timeout)
            finally:
                with contextlib.suppress(RuntimeError, KafkaException):
                    probe.close()
        if found is None:
            return {}
        behind = {}
        for key, (next_offset, (low, high)) in found.items():
            start = low if next_offset < 0 else next_offset
            if high > start:
                behind[key] = (start, high)
        return behind

    def _positions(
        self, consumer: Consumer, timeout: float
    ) -> dict[tuple[str, int], tuple[int, tuple[int, int]]] | None:
        """Next offset to read and (low, end) offsets of every partition read; None if unknown."""
        try:
            if self._topics:
                partitions = []
                for topic in self._topics:
                    metadata = consumer.list_topics(topic, timeout=timeout).topics[topic]
                    partitions += [TopicPartition(topic, p) for p in sorted(metadata.partitions)]
                committed = consumer.committed(partitions, timeout=timeout)
                next_offsets = {(tp.topic, tp.partition): tp.offset for tp in committed}
            else:
                next_offsets = dict(self._next)
            found = {}
            for (topic, partition), offset in next_offsets.items():
                ends = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=timeout, cached=False
                )
                found[(topic, partition)] = (offset, ends)
            return found
        except (KafkaException, KeyError) as exc:
            log.debug("cannot tell where the reader stands: %s", exc)
            return None

    def restart_sync(self) -> None:
        """Replace the consumer by a fresh one: assigned at the next offsets, or joining the group."""
        old, self._consumer = self._consumer, Consumer(self._config)
        if self._topics:
            # Leave the group first, so that its partitions go to the fresh member at once.
            with contextlib.suppress(RuntimeError, KafkaException):
                old.close()
            self._consumer.subscribe(self._topics)
        else:
            self._consumer.assign([TopicPartition(t, p, offset) for (t, p), offset in self._next.items()])
            with contextlib.suppress(RuntimeError, KafkaException):
                old.close()
        self.restarts += 1

    async def poll_batch(self, max_messages: int = 500, timeout: float = 0.5) -> list[Incoming]:
        return await asyncio.to_thread(self.poll_batch_sync, max_messages, timeout)

    def commit_sync(self, messages: Sequence[Incoming]) -> None:
        """Commit past the last of each partition's messages (they have been handled)."""
        last: dict[tuple[str, int], int] = {}
        for m in messages:
            last[(m.topic, m.partition)] = max(last.get((m.topic, m.partition), -1), m.offset)
        if last:
            self._consumer.commit(
                offsets=[TopicPartition(t, p, o + 1) for (t, p), o in last.items()], asynchronous=False
            )

    async def commit(self, messages: Sequence[Incoming]) -> None:
        await asyncio.to_thread(self.commit_sync, messages)

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, KafkaException):
            self._consumer.close()


class Topics:
    """Creates the topics and grows the spec topic as clusters are added."""

    def __init__(
        self, bootstrap: str, *, bundle_limit: int = 1024 * 1024, names: layout.Layout = layout.DEFAULT
    ) -> None:
        self._admin = AdminClient({"bootstrap.servers": bootstrap})
        self._names = names
        self._config = {"max.message.bytes": str(max_message_bytes(bundle_limit))}

    def spec_partitions(self) -> int:
        topic = self._names.spec_topic
        meta = self._admin.list_topics(topic, timeout=30)
        found = meta.topics.get(topic)
        if found is None or found.error is not None:
            return 0
        return len(found.partitions)

    def ensure_sync(self, highest_spec_partition: int = 0) -> None:
        wanted = layout.partitions_for(highest_spec_partition)
        new = [
            NewTopic(self._names.spec_topic, wanted, 1, config=self._config),
            NewTopic(self._names.status_topic, layout.STATUS_PARTITIONS, 1, config=self._config),
        ]
        created: set[str] = set()
        for topic, fut in self._admin.create_topics(new, operation_timeout=30).items():
            try:
                fut.result(60)
                created.add(topic)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
        if self._names.spec_topic in created or self.spec_partitions() >= wanted:
            return
        futures = self._admin.create_partitions(
            [NewPartitions(self._names.spec_topic, wanted)], operation_timeout=60
        )
        for fut in futures.values():
            try:
                fut.result(60)
            except KafkaException as exc:
                # Another replica grew it first (metadata may lag a moment behind).
                if exc.args[0].code() != KafkaError.INVALID_PARTITIONS:
                    raise PublishError(f"cannot grow {self._names.spec_topic} to {wanted}: {exc}") from exc

    async def ensure(self, highest_spec_partition: int = 0) -> None:
        await asyncio.to_thread(self.ensure_sync, highest_spec_partition)
