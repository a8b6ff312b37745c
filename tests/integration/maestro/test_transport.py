"""The Kafka clients against a real broker: a reader recovers a stuck consumer.

After a broker restart librdkafka may leave a consumer stuck while the broker holds messages for
it (seen in tests/integration/maestro/test_failures.py: an agent that never read its partition
again, a server that never ingested another status). Cases: an agent's assigned reader and a
server's group member each have their fetching stopped behind their back (paused: the consumer
returns nothing, as a stuck one does) while messages are produced; the reader notices it gets
nothing although the broker's end offsets are past the next offsets to read, starts a fresh
consumer (at its next offset; or joining the group again, from the committed offsets), and every
message arrives exactly once.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from maestro.transport.connection import KafkaSettings
from maestro.transport.consumer import Reader
from maestro.transport.messages import Incoming, Outgoing
from maestro.transport.producer import Publisher

pytestmark = pytest.mark.integration


def outgoing(topic: str, values: range) -> list[Outgoing]:
    return [Outgoing(topic, "c1", [], f"m{i}".encode(), 0) for i in values]


async def read(reader: Reader, want: int, timeout: float) -> list[Incoming]:
    got: list[Incoming] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(got) < want and loop.time() < deadline:
        got.extend(await reader.poll_batch(100, 0.2))
    return got


async def test_a_stuck_partition_fetcher_is_restarted_at_the_next_offset(
    kafka_settings: KafkaSettings,
) -> None:
    topic = f"test.transport.{uuid.uuid4().hex[:10]}"
    admin = AdminClient(kafka_settings.client_config())
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    publisher = Publisher(kafka_settings)
    reader = Reader(kafka_settings, f"{topic}.agent", stall_after=2.0)
    try:
        await asyncio.to_thread(reader.assign, [(topic, 0)])
        await publisher.publish(outgoing(topic, range(3)))
        first = await read(reader, 3, 20)
        assert [m.offset for m in first] == [0, 1, 2]
        # The fetcher stops behind the reader's back; the broker gets more for the partition.
        reader._consumer.pause([TopicPartition(topic, 0)])
        await publisher.publish(outgoing(topic, range(3, 6)))
        rest = await read(reader, 3, 30)
        assert reader.restarts == 1
        assert [(m.offset, m.value) for m in rest] == [(3, b"m3"), (4, b"m4"), (5, b"m5")]
        assert await read(reader, 1, 3) == [], "nothing is handed out twice"
    finally:
        reader.close()


async def test_a_stuck_group_member_joins_again_and_resumes_from_the_committed_offsets(
    kafka_settings: KafkaSettings,
) -> None:
    topic = f"test.transport.{uuid.uuid4().hex[:10]}"
    admin = AdminClient(kafka_settings.client_config())
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(30)
    publisher = Publisher(kafka_settings)
    reader = Reader(kafka_settings, f"{topic}.servers", stall_after=2.0)
    try:
        reader.subscribe([topic])
        await publisher.publish(outgoing(topic, range(3)))
        first = await read(reader, 3, 30)
        assert [m.offset for m in first] == [0, 1, 2]
        await reader.commit(first)
        reader._consumer.pause([TopicPartition(topic, 0), TopicPartition(topic, 1)])
        await publisher.publish(outgoing(topic, range(3, 6)))
        rest = await read(reader, 3, 40)
        assert reader.restarts == 1
        assert [(m.offset, m.value) for m in rest] == [(3, b"m3"), (4, b"m4"), (5, b"m5")]
    finally:
        reader.close()
