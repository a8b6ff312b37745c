"""A replica's health tells the truth and its metrics move.

Cases: SERVING and /readyz 200 while every loop runs; a loop that ends turns the gRPC health
service NOT_SERVING (overall and per service) and /readyz 503 naming it, while /healthz still
answers (the process lives: a restart is the kubelet's call, not the probe's). /metrics counts the
calls made, per method and status code (a refused one under its code), times them, and shows the
outbox's depth and age.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from maestro import client_errors
from maestro.server import app
from maestro.transport.connection import KafkaSettings
from maestro.wire import stubs
from tests.integration.maestro.conftest import Identities, MaestroUnderTest, server_settings
from tests.integration.maestro.test_server import eventually

pytestmark = pytest.mark.integration

SERVICES = ("", stubs.CLOUDEVENT_SERVICE, stubs.QUERY_SERVICE, stubs.SOURCE_SERVICE)


@pytest.fixture
async def probed_server(
    pg_dsn: str, kafka_settings: KafkaSettings, identities: Identities
) -> AsyncIterator[MaestroUnderTest]:
    """A replica that also serves its HTTP health endpoints, on a free port."""
    settings = server_settings(pg_dsn, kafka_settings, identities, health_port=0)
    running = await app.start(settings)
    try:
        yield MaestroUnderTest(running, settings, identities)
    finally:
        await running.stop()


async def grpc_health(server: MaestroUnderTest) -> dict[str, int]:
    async with server.channel() as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return {
            service: (await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)).status
            for service in SERVICES
        }


async def http_get(server: MaestroUnderTest, path: str, port: int | None = None) -> tuple[int, str]:
    url = f"http://127.0.0.1:{port or server.running.health_port}{path}"
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        session.get(url) as reply,
    ):
        return reply.status, await reply.text()


async def test_a_stopped_loop_makes_the_replica_unready_and_names_the_loop(
    probed_server: MaestroUnderTest,
) -> None:
    serving = health_pb2.HealthCheckResponse.SERVING
    assert await grpc_health(probed_server) == dict.fromkeys(SERVICES, serving)
    assert await http_get(probed_server, "/readyz") == (200, "ready\n")
    assert await http_get(probed_server, "/healthz") == (200, "ok\n")

    # From outside, as a crash would: the loop's task, found by its name.
    (relay,) = [task for task in asyncio.all_tasks() if task.get_name() == "outbox-relay"]
    relay.cancel()
    not_serving = dict.fromkeys(SERVICES, health_pb2.HealthCheckResponse.NOT_SERVING)

    async def unready() -> bool:
        return await grpc_health(probed_server) == not_serving

    await eventually(unready, timeout=10)

    status, text = await http_get(probed_server, "/readyz")
    assert status == 503
    assert "background loop outbox-relay stopped: cancelled" in text
    assert await http_get(probed_server, "/healthz") == (200, "ok\n")
    assert probed_server.running.readiness.stopped_loops == {"outbox-relay": "cancelled"}


async def scrape(server: MaestroUnderTest) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, by name and labels."""
    status, text = await http_get(server, "/metrics", server.running.metrics_port)
    assert status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


QUERY = "/fleetplane.maestro.v1.MaestroQuery"


def handled(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], method: str, code: str) -> float:
    return samples.get(("maestro_grpc_server_handled_total", (("code", code), ("method", method))), 0.0)


async def test_metrics_count_and_time_the_calls_made_and_show_the_outbox(
    probed_server: MaestroUnderTest,
) -> None:
    before = await scrape(probed_server)
    async with probed_server.client() as client:
        await client.create_consumer("metrics-1")
        for _ in range(3):
            await client.get_consumer("metrics-1")
        with pytest.raises(client_errors.NotFound):
            await client.get_consumer("nobody")
    after = await scrape(probed_server)

    moved = {
        (method, code): handled(after, f"{QUERY}/{method}", code) - handled(before, f"{QUERY}/{method}", code)
        for method, code in (("CreateConsumer", "OK"), ("GetConsumer", "OK"), ("GetConsumer", "NOT_FOUND"))
    }
    assert moved == {("CreateConsumer", "OK"): 1, ("GetConsumer", "OK"): 3, ("GetConsumer", "NOT_FOUND"): 1}
    timed = (
        "maestro_grpc_server_handling_seconds_count",
        (("code", "OK"), ("method", f"{QUERY}/GetConsumer")),
    )
    assert after[timed] >= 3
    assert ("maestro_outbox_events", ()) in after
    assert ("maestro_outbox_oldest_event_age_seconds", ()) in after
