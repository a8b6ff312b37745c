"""Kafka's high availability for Maestro, on a real three-broker KRaft cluster (``kafka_ha``): the
spec and status topics are made with the replication and configs the server is given, and a limit
changed between two starts of the server is set on the existing topics. The loss of a broker to
kill -9 during a rollout is a fault of the chaos suite (tests/chaos/), which runs on this cluster.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from localinfra import kafka
from maestro.server import app
from maestro.transport.client_config import max_message_bytes
from maestro.transport.connection import KafkaSettings
from maestro.transport.topic_settings import TopicSettings
from tests.conftest import KafkaAs
from tests.integration.maestro.conftest import Identities, MaestroUnderTest, server_settings

pytestmark = pytest.mark.integration


def described(settings: KafkaSettings, topic: str) -> tuple[int, dict[str, str | None]]:
    """The topic's replica count and its configs, as the brokers tell them."""
    admin = AdminClient(settings.client_config())
    partitions = admin.list_topics(topic, timeout=30).topics[topic].partitions
    (resource,) = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)]).values()
    configs = {name: entry.value for name, entry in resource.result(30).items()}
    return len(partitions[0].replicas), configs


async def test_topic_configs_follow_the_limits_across_restarts(
    pg_dsn: str, kafka_ha_as: KafkaAs, identities: Identities
) -> None:
    server_kafka = kafka_ha_as(kafka.MAESTRO_SERVER)
    first = server_settings(
        pg_dsn, server_kafka, identities, bundle_limit=256 * 1024, topic_settings=TopicSettings(3, 1)
    )
    running_server = await app.start(first)
    try:
        async with MaestroUnderTest(running_server, first, identities).client() as admin:
            consumer = await admin.create_consumer("ha-limits")
    finally:
        await running_server.stop()
    assert consumer.slot is not None
    topics = [first.topics.spec_topic(consumer.slot), first.topics.status_topic(consumer.slot)]
    for topic in topics:
        replicas, configs = await asyncio.to_thread(described, server_kafka, topic)
        assert replicas == 3, f"{topic} has {replicas} replicas"
        assert configs["min.insync.replicas"] == "1"
        assert configs["max.message.bytes"] == str(max_message_bytes(256 * 1024))

    # The limits change; the server is started again on the same database and topics.
    changed = dataclasses.replace(
        first,
        bundle_limit=512 * 1024,
        topic_settings=TopicSettings(3, 2, {"retention.ms": "3600000"}),
    )
    running_server = await app.start(changed)
    await running_server.stop()
    for topic in topics:
        replicas, configs = await asyncio.to_thread(described, server_kafka, topic)
        assert replicas == 3
        assert configs["min.insync.replicas"] == "2", f"{topic}: {configs['min.insync.replicas']}"
        assert configs["max.message.bytes"] == str(max_message_bytes(512 * 1024))
        assert configs["retention.ms"] == "3600000"
