"""Stand-ins for confluent-kafka's Producer and Consumer, driven by the test (no broker).

`FakeProducer` queues what is produced and reports a delivery only when the test settles it, as a
broker that is away and comes back would; `FakeConsumer` hands out scripted `consume` batches.
They replace the `_producer` / `_consumer` of the real `Publisher` / `Reader`, so the code under
test is the real client code.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition

from maestro.transport import consumer as consumer_mod
from maestro.transport.connection import KafkaSettings
from maestro.transport.consumer import Reader
from maestro.transport.messages import Incoming
from maestro.transport.producer import Publisher

Callback = Callable[[KafkaError | None, Any], None]


@dataclass
class Produced:
    topic: str
    key: str
    value: bytes | None
    partition: int | None
    on_delivery: Callback
    settled: bool = False
    headers: list[tuple[str, bytes]] | None = None


class FakeProducer:
    def __init__(self) -> None:
        self.produced: list[Produced] = []
        self._ready: list[tuple[Produced, KafkaError | None]] = []
        self._lock = threading.Lock()
        self.refuse: KafkaError | None = None
        self.refreshes = 0
        # Whether reading the metadata again makes the refused partition known (one added lately).
        self.known_after_refresh = False

    def produce(self, topic: str, **kwargs: Any) -> None:
        if self.refuse is not None:
            raise KafkaException(self.refuse)
        self.produced.append(
            Produced(
                topic,
                kwargs["key"],
                kwargs["value"],
                kwargs.get("partition"),
                kwargs["on_delivery"],
                headers=kwargs.get("headers"),
            )
        )

    def settle(self, items: Iterable[Produced], error: KafkaError | None = None) -> None:
        """Kafka answers for these messages: their reports are served by the next poll."""
        with self._lock:
            self._ready.extend((p, error) for p in items)

    def unsettled(self) -> list[Produced]:
        return [p for p in self.produced if not p.settled]

    def poll(self, timeout: float) -> int:
        with self._lock:
            ready, self._ready = self._ready, []
        for produced, error in ready:
            produced.settled = True
            produced.on_delivery(error, None)
        if not ready:
            time.sleep(min(timeout, 0.005))
        return len(ready)

    def list_topics(self, topic: str, timeout: float) -> None:
        self.refreshes += 1
        if self.known_after_refresh:
            self.refuse = None

    def flush(self, timeout: float) -> int:
        self.poll(timeout)
        return len(self.unsettled())

    def purge(self) -> None:
        for produced in self.unsettled():
            produced.settled = True
            produced.on_delivery(KafkaError(KafkaError._PURGE_QUEUE), None)

    def close(self) -> None:
        pass


def publisher(producer: FakeProducer) -> Publisher:
    made = object.__new__(Publisher)
    made._attach(producer)  # type: ignore[arg-type]
    return made


@dataclass
class FakeMessage:
    offset_: int
    error_: KafkaError | None = None
    topic_: str = "t.spec"
    partition_: int = 0
    headers_: list[tuple[str, bytes]] = field(default_factory=list)

    def error(self) -> KafkaError | None:
        return self.error_

    def topic(self) -> str:
        return self.topic_

    def partition(self) -> int:
        return self.partition_

    def offset(self) -> int:
        return self.offset_

    def key(self) -> bytes:
        return b"c1"

    def value(self) -> bytes:
        return b"{}"

    def headers(self) -> list[tuple[str, bytes]]:
        return self.headers_


class FakeConsumer:
    """Scripted `consume` batches; the broker's end offsets; what it was assigned."""

    def __init__(self, batches: list[list[FakeMessage]] | None = None, *, committed: int = -1001) -> None:
        self._batches = batches or []
        self.committed_offset = committed
        self.assigned: list[tuple[str, int, int]] = []
        self.end_offset = 0
        self.broker_away = False
        self.closed = False

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        return self._batches.pop(0) if self._batches else []

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        if self.group_committed is not None:
            return self.group_commits(partitions)
        return [TopicPartition(tp.topic, tp.partition, self.committed_offset) for tp in partitions]

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = [(tp.topic, tp.partition, tp.offset) for tp in partitions]

    def get_watermark_offsets(
        self, partition: TopicPartition, timeout: float | None = None, cached: bool = False
    ) -> tuple[int, int]:
        if self.broker_away:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT, "broker away"))
        return 0, self.end_offset

    def offsets_for_times(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        """Start (-2) or end (-1) offsets, all in one request as the broker answers ListOffsets."""
        if self.broker_away:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT, "broker away"))
        self.offset_requests += 1
        return [
            TopicPartition(tp.topic, tp.partition, 0 if tp.offset == OFFSET_BEGINNING else self.end_offset)
            for tp in partitions
        ]

    #: batched offset requests answered (one per start or end, whatever the partitions)
    offset_requests = 0

    def close(self) -> None:
        self.closed = True

    # A group member's side: subscription, the topic's partitions and the group's commits.
    subscribed: list[str] | None = None
    partitions: int = 2
    group_committed: dict[int, int] | None = None

    def subscribe(self, topics: list[str]) -> None:
        self.subscribed = list(topics)

    #: what the group gave a member: (topic, partition) -> its position (-1001: none yet)
    positions: dict[tuple[str, int], int] | None = None

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(t, p) for t, p in self.positions or {}]

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        held = self.positions or {}
        return [TopicPartition(tp.topic, tp.partition, held[(tp.topic, tp.partition)]) for tp in partitions]

    def list_topics(self, topic: str | None = None, timeout: float | None = None) -> Any:
        if self.broker_away:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT, "broker away"))
        partitions = {p: object() for p in range(self.partitions)}
        names = [topic] if topic is not None else self.topics
        return SimpleNamespace(topics={t: SimpleNamespace(partitions=partitions) for t in names})

    # The broker's topics, for a pattern subscription.
    topics: list[str] = ["t.status"]

    def group_commits(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        commits = self.group_committed or {}
        return [TopicPartition(tp.topic, tp.partition, commits.get(tp.partition, -1001)) for tp in partitions]


def reader(consumer: FakeConsumer, *, stall_after: float | None = None) -> Reader:
    """A real `Reader` over `consumer` (built without librdkafka)."""
    real = consumer_mod.Consumer
    consumer_mod.Consumer = lambda config: consumer  # type: ignore[assignment,misc]
    try:
        return Reader(KafkaSettings.insecure("fake:9092"), "group", stall_after=stall_after)
    finally:
        consumer_mod.Consumer = real  # type: ignore[misc]


class RecordingReader:
    """A `Reader`'s async surface over scripted batches, recording commits."""

    def __init__(self, batches: list[list[Incoming]]) -> None:
        self._batches = batches
        self.committed: list[list[Incoming]] = []
        self.subscribed: list[str] = []

    def subscribe(self, topics: list[str]) -> None:
        self.subscribed.extend(topics)

    async def poll_batch(self, max_messages: int = 500, timeout: float = 0.5) -> list[Incoming]:
        if self._batches:
            return self._batches.pop(0)
        await asyncio.sleep(0.01)
        return []

    async def commit(self, messages: list[Incoming]) -> None:
        self.committed.append(list(messages))
