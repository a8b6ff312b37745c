"""1,000 malformed CloudEvents from an authenticated, authorized client over raw gRPC, against a
real server, PostgreSQL and Kafka (`benchmarks.fuzz` makes them: random attributes and types, huge
and NUL-laden values, bad JSON, unknown clusters, stale and huge versions). Every one is refused;
the consumers and works stored before are exactly as they were (count and checksum); the server
still serves: it says SERVING, and a valid work published afterwards is stored and reaches its
cluster's topic.
"""

from __future__ import annotations

import uuid

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from benchmarks import fuzz
from maestro.client import MaestroClient
from tests.integration.maestro.conftest import MaestroUnderTest
from tests.integration.maestro.test_server import bundle_of, configmap, read_partition

pytestmark = pytest.mark.integration


async def test_a_thousand_malformed_events_are_refused_and_change_nothing(
    maestro_server: MaestroUnderTest, source_client: MaestroClient
) -> None:
    fleet = await fuzz.seed_fleet(source_client, ["fuzz-1", "fuzz-2"], works_per_cluster=5)
    before = await fuzz.fingerprint(source_client)
    assert before[:2] == (2, 10)

    async with maestro_server.channel() as channel:
        result = await fuzz.run(channel, fleet, 1000, seed=27)
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())

    assert result.events == 1000 and result.accepted == 0, (result.codes, result.taken)
    assert set(result.defects) == set(fuzz.DEFECTS), "every kind of defect was sent"
    assert await fuzz.fingerprint(source_client) == before
    assert health.status == health_pb2.HealthCheckResponse.SERVING

    work = uuid.uuid4()
    await source_client.apply("fuzz-1", work, bundle_of(configmap("after-fuzz")))
    consumer = await source_client.get_consumer("fuzz-1")
    delivered = await read_partition(maestro_server, consumer.spec_placement.topic, 0, want=6)
    assert str(work) in [m.attributes.get("resourceid") for m in delivered]
