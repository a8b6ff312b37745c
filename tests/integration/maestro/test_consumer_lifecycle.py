"""What a consumer holds in Kafka goes with it, against a real server, PostgreSQL and Kafka (its
authorizer).

Cases: 40 consumers registered and deleted (8 at a time) leave no topic, partition or ACL under the
server's prefix, and the broker's partition count where it was; topics and ACLs of a slot no
consumer holds (a registration whose transaction did not commit after its topics were made) are
deleted when a replica starts, and a registered consumer's stay.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

import pytest
from confluent_kafka.admin import AclBinding, AclOperation, AdminClient, NewTopic, ResourceType

from localinfra import ports
from maestro.client import MaestroClient
from maestro.server import app
from maestro.transport import acls
from maestro.transport.client_config import base_config
from tests.integration.maestro.conftest import MaestroUnderTest
from tests.integration.maestro.test_server import eventually
from trust.identity import Identity

pytestmark = pytest.mark.integration


def admin_of(server: MaestroUnderTest) -> AdminClient:
    return AdminClient(base_config(server.settings.kafka))


def under_prefix(server: MaestroUnderTest) -> tuple[list[str], int, list[AclBinding]]:
    """The server's topics, the broker's partition count and the ACLs naming the server's topics
    or groups."""
    admin = admin_of(server)
    topics = admin.list_topics(timeout=30).topics
    prefix = server.settings.topics.prefix + "."
    mine = sorted(t for t in topics if t.startswith(prefix))
    partitions = sum(len(meta.partitions) for meta in topics.values())
    listed = admin.describe_acls(acls.every_acl(), request_timeout=60).result(60)
    return mine, partitions, [b for b in listed if b.name.startswith(prefix)]


async def eventually_true(check: Callable[[], bool], timeout: float = 30) -> None:
    async def ask() -> bool:
        return await asyncio.to_thread(check)

    await eventually(ask, timeout=timeout)


async def test_consumers_registered_and_deleted_leave_nothing_in_kafka(
    maestro_server: MaestroUnderTest, source_client: MaestroClient
) -> None:
    _, partitions_before, _ = await asyncio.to_thread(under_prefix, maestro_server)
    gate = asyncio.Semaphore(8)

    async def cycle(n: int) -> None:
        async with gate:
            await source_client.create_consumer(f"churn-{n}")
            await source_client.delete_consumer(f"churn-{n}")

    await asyncio.gather(*(cycle(n) for n in range(40)))

    def released() -> bool:
        topics, partitions, left = under_prefix(maestro_server)
        return not topics and not left and partitions <= partitions_before

    await eventually_true(released)
    assert await source_client.list_consumers() == []


async def test_a_starting_replica_deletes_what_kafka_holds_of_unregistered_slots(
    maestro_server: MaestroUnderTest, source_client: MaestroClient
) -> None:
    kept = await source_client.create_consumer("kept")
    names = maestro_server.settings.topics
    ghost = 10_000  # a slot the sequence drew for a registration that never committed
    leftovers = [names.spec_topic(ghost), names.status_topic(ghost)]
    principal = Identity.cluster("ghost", ghost).kafka_principal
    grants = [
        acls.allow(ResourceType.TOPIC, leftovers[0], principal, AclOperation.READ),
        acls.allow(ResourceType.TOPIC, leftovers[1], principal, AclOperation.WRITE),
        acls.allow(ResourceType.GROUP, names.agent_group("ghost"), principal, AclOperation.READ),
    ]

    def leave() -> None:
        admin = admin_of(maestro_server)
        for future in admin.create_topics([NewTopic(t, 1, 1) for t in leftovers]).values():
            future.result(30)
        for future in admin.create_acls(grants).values():
            future.result(30)

    await asyncio.to_thread(leave)
    topics, _, held = await asyncio.to_thread(under_prefix, maestro_server)
    assert set(leftovers) <= set(topics) and {b.principal for b in held} >= {principal}

    settings = dataclasses.replace(maestro_server.settings, port=ports.free_port(), metrics_port=None)
    replica = await app.start(settings, migrate=False)
    try:

        def only_the_registered() -> bool:
            topics, _, held = under_prefix(maestro_server)
            principals = {b.principal for b in held}
            return topics == sorted([kept.spec_placement.topic, kept.status_topic]) and principals == {
                Identity.cluster("kept", kept.slot or 0).kafka_principal
            }

        await eventually_true(only_the_registered)
    finally:
        await replica.stop()
