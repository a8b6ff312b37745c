"""Poison events against a real server, PostgreSQL and Kafka: each is quarantined, none blocks the
others, and an admin sees, retries and drops them.

Cases: one cluster's spec topic takes messages of at most 2 KiB (an operator's setting) and a
work of 48 KiB is published to it between two small ones, with a work for another cluster: the
small ones and the other cluster's reach their topics, the large one is quarantined after its
attempts with Kafka's reason, `fleetplane maestro quarantine list` and the metrics show it, and
once the topic takes it again `quarantine retry --all` delivers it. A status event that does not
decode comes between two good reports on a cluster's status topic: both reports are stored, the bad one
is quarantined with where it was read, a retry sends it to its topic again (and it comes back to
the quarantine), and `quarantine drop` forgets it.
"""

from __future__ import annotations

import asyncio
import base64
import os
import uuid

import pytest
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource
from typer.testing import CliRunner

from fleetplane.maestro_cli import app as maestro_app
from maestro.api import quarantine
from maestro.client import MaestroClient
from maestro.transport.client_config import base_config
from maestro.transport.messages import Incoming, Outgoing
from maestro.transport.producer import Publisher
from tests.integration import probing
from tests.integration.maestro.conftest import ADMIN, MaestroUnderTest
from tests.integration.maestro.test_server import (
    APPLIED,
    bundle_of,
    configmap,
    eventually,
    read_partition,
    send_status,
)

pytestmark = pytest.mark.integration

STATUS_UPDATE = b"io.open-cluster-management.works.v1alpha1.manifestbundles.status.update_request"


def limit_topic(server: MaestroUnderTest, topic: str, max_bytes: int) -> None:
    """Set the largest message ``topic`` takes, as an operator would with kafka-configs."""
    admin = AdminClient(base_config(server.settings.kafka))
    entry = ConfigEntry("max.message.bytes", str(max_bytes), incremental_operation=AlterConfigOpType.SET)
    futures = admin.incremental_alter_configs([ConfigResource("topic", topic, incremental_configs=[entry])])
    for future in futures.values():
        future.result(30)


def cli(server: MaestroUnderTest, *args: str) -> str:
    """Run ``fleetplane maestro ARGS`` as an admin; its output (it must succeed)."""
    folder = server.identities.issue(ADMIN)
    result = CliRunner().invoke(
        maestro_app, [*args, "--server", server.address, "--tls-dir", str(folder)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return result.output


def ids_on(messages: list[Incoming]) -> list[str]:
    return [m.attributes.get("resourceid", "") for m in messages]


async def test_a_spec_event_kafka_refuses_for_good_is_quarantined_and_blocks_nothing(
    maestro_server: MaestroUnderTest, source_client: MaestroClient
) -> None:
    a = await source_client.create_consumer("poison-a")
    b = await source_client.create_consumer("poison-b")
    await asyncio.to_thread(limit_topic, maestro_server, a.spec_placement.topic, 2048)
    small_1, large, small_2, other = (uuid.uuid4() for _ in range(4))
    # Random bytes do not compress: the message stays far above the topic's limit.
    payload = base64.b64encode(os.urandom(36 * 1024)).decode()
    await source_client.apply("poison-a", small_1, bundle_of(configmap("s1")))
    await source_client.apply("poison-a", large, bundle_of(configmap("large", payload)))
    await source_client.apply("poison-a", small_2, bundle_of(configmap("s2")))
    await source_client.apply("poison-b", other, bundle_of(configmap("o")))

    on_b = await read_partition(maestro_server, b.spec_placement.topic, 0, want=1)
    assert ids_on(on_b) == [str(other)]
    on_a = await read_partition(maestro_server, a.spec_placement.topic, 0, want=2)
    assert ids_on(on_a) == [str(small_1), str(small_2)]

    async def quarantined() -> list[quarantine.Quarantined]:
        return await source_client.quarantined()

    held = await eventually(quarantined, timeout=60)
    assert [(q.kind, q.consumer, q.resource_id, q.topic, q.attempts) for q in held] == [
        (quarantine.Kind.SPEC, "poison-a", large, a.spec_placement.topic, 5)
    ]
    assert "MSG_SIZE_TOO_LARGE" in held[0].reason and held[0].size > 36 * 1024
    listed = await asyncio.to_thread(cli, maestro_server, "quarantine", "list", "-o", "wide")
    assert str(large) in listed and "MSG_SIZE_TOO_LARGE" in listed

    async def gauge() -> bool:
        assert maestro_server.running.metrics_port is not None
        samples = await probing.scrape(maestro_server.running.metrics_port)
        spec = probing.value(samples, "maestro_quarantined_events", kind="spec")
        return spec == 1 and probing.value(samples, "maestro_outbox_events") == 0

    await eventually(gauge, timeout=40)

    await asyncio.to_thread(limit_topic, maestro_server, a.spec_placement.topic, 2 * 1024 * 1024)
    said = await asyncio.to_thread(cli, maestro_server, "quarantine", "retry", "--all")
    assert "1 spec event(s) back in the outbox" in said
    on_a = await read_partition(maestro_server, a.spec_placement.topic, 0, want=3)
    assert ids_on(on_a) == [str(small_1), str(small_2), str(large)]
    assert await source_client.quarantined() == []


async def test_a_status_event_that_does_not_decode_is_quarantined_and_the_reports_around_it_are_stored(
    maestro_server: MaestroUnderTest, source_client: MaestroClient
) -> None:
    consumer = await source_client.create_consumer("poison-s")
    first, second = uuid.uuid4(), uuid.uuid4()
    await source_client.apply("poison-s", first, bundle_of(configmap("f")))
    await source_client.apply("poison-s", second, bundle_of(configmap("s")))
    await send_status(maestro_server, (await source_client.get(first)).bundle, 1, APPLIED)
    writer = Publisher(maestro_server.settings.kafka)
    try:
        broken = Outgoing(
            topic=consumer.status_topic,
            key="poison-s",
            headers=[
                ("ce_specversion", b"1.0"),
                ("ce_id", b"bad-1"),
                (
                    "ce_type",
                    b"io.open-cluster-management.works.v1alpha1.manifestbundles.status.update_request",
                ),
                ("ce_resourceid", str(second).encode()),
            ],
            value=b'{"conditions": [',
        )
        await writer.publish([broken])
    finally:
        await asyncio.to_thread(writer.close)
    await send_status(maestro_server, (await source_client.get(second)).bundle, 2, APPLIED)

    async def both_stored() -> bool:
        records = [await source_client.get(w) for w in (first, second)]
        return all(r.status is not None for r in records)

    await eventually(both_stored, timeout=40)
    held = await eventually(source_client.quarantined, timeout=20)
    assert [(q.kind, q.consumer, q.resource_id, q.topic, q.partition, q.offset) for q in held] == [
        (quarantine.Kind.STATUS, "poison-s", second, consumer.status_topic, 0, 1)
    ]
    assert held[0].reason.startswith("malformed: ")

    retried = await source_client.retry_quarantined(quarantine.Selection(ids=(held[0].id,)))
    assert retried == quarantine.Retried(status=1)

    async def back_again() -> list[quarantine.Quarantined]:
        return [q for q in await source_client.quarantined() if q.id != held[0].id]

    again = await eventually(back_again, timeout=40)
    assert [(q.resource_id, q.offset, q.reason) for q in again] == [(second, 3, held[0].reason)]
    said = await asyncio.to_thread(cli, maestro_server, "quarantine", "drop", str(again[0].id))
    assert "1 quarantined event(s) dropped" in said
    assert await source_client.quarantined() == []
    listed = await asyncio.to_thread(cli, maestro_server, "quarantine", "list")
    assert "No quarantined events." in listed
