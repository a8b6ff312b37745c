"""confluent-kafka clients for the Maestro server and agents, with asyncio-friendly edges.

confluent-kafka calls block (poll, flush, commit), so every blocking call goes to a thread: the
event loop of a server or agent never waits on Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from maestro.transport import binding, layout


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


class Publisher:
    """An idempotent producer: retries never duplicate or reorder a partition's messages."""

    def __init__(
        self, bootstrap: str, *, bundle_limit: int = 1024 * 1024, client_id: str = "maestro"
    ) -> None:
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "client.id": client_id,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "compression.type": "lz4",
                "message.max.bytes": max_message_bytes(bundle_limit),
            }
        )

    def _produce(self, item: Outgoing, failures: list[str]) -> None:
        def delivered(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                failures.append(f"{msg.topic()}[{msg.partition()}]: {err}")

        kwargs: dict[str, Any] = {
            "key": item.key,
            "value": item.value,
            "headers": item.headers,
            "on_delivery": delivered,
        }
        if item.partition is not None:
            kwargs["partition"] = item.partition
        while True:
            try:
                self._producer.produce(item.topic, **kwargs)
                return
            except BufferError:
                self._producer.poll(0.05)

    def publish_sync(self, items: Sequence[Outgoing], timeout: float = 30.0) -> None:
        """Publish and wait until Kafka acknowledged every message; raise if any failed."""
        failures: list[str] = []
        for item in items:
            self._produce(item, failures)
        remaining = self._producer.flush(timeout)
        if failures or remaining:
            raise PublishError(f"{len(failures)} failed, {remaining} unacknowledged: {failures[:3]}")

    async def publish(self, items: Sequence[Outgoing], timeout: float = 30.0) -> None:
        await asyncio.to_thread(self.publish_sync, items, timeout)


class Reader:
    """A consumer that either joins a group (server replicas) or is assigned partitions (agents)."""

    def __init__(
        self, bootstrap: str, group: str, *, client_id: str = "maestro", bundle_limit: int = 1024 * 1024
    ) -> None:
        self._consumer = Consumer(
            {
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
            }
        )

    def subscribe(self, topics: Sequence[str]) -> None:
        self._consumer.subscribe(list(topics))

    def assign(self, placements: Sequence[tuple[str, int]]) -> None:
        """Read exactly these partitions, from the offsets committed for this group."""
        partitions = [TopicPartition(t, p) for t, p in placements]
        committed = self._consumer.committed(partitions, timeout=30)
        for tp in committed:
            if tp.offset < 0:
                tp.offset = -2  # OFFSET_BEGINNING: nothing committed yet, read the whole partition
        self._consumer.assign(committed)

    def poll_batch_sync(self, max_messages: int, timeout: float) -> list[Incoming]:
        messages = self._consumer.consume(max_messages, timeout)
        out = []
        for msg in messages:
            err = msg.error()
            if err is None:
                out.append(_incoming(msg))
            elif err.code() != KafkaError._PARTITION_EOF:
                raise KafkaException(err)
        return out

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
