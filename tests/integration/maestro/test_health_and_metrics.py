"""A replica's and an agent's health tell the truth and their metrics move.

Cases, server: SERVING and /readyz 200 while every loop runs; a loop that ends turns the gRPC
health service NOT_SERVING (overall and per service) and /readyz 503 naming it, while /healthz
still answers (the process lives: a restart is the kubelet's call, not the probe's). /metrics
counts the calls made, per method and status code (a refused one under its code), times them, and
shows the outbox's depth and age.

Agent (a real ``fleetplane maestro agent`` process): started while its Maestro server is down, it
is alive and not ready, saying it waits for its placement and what Maestro answered; once the
server is back it is ready; a work applied and then deleted moves its applies, status reports,
apply latency and deletions, and it shows its consumer's restarts, its spec partition's lag and
the seconds its certificate has left, with no label naming its cluster or the work.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from localinfra import kube, ports
from localinfra.environment import Environment
from maestro import client_errors
from maestro.api import bundles
from maestro.server import app
from maestro.transport.connection import KafkaSettings
from maestro.wire import stubs
from tests.integration import probing
from tests.integration.maestro.conftest import Identities, MaestroUnderTest, server_settings
from tests.integration.maestro.test_server import eventually
from trust import authority
from trust.identity import Identity

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


async def http_get(server: MaestroUnderTest, path: str) -> tuple[int, str]:
    assert server.running.health_port is not None
    return await probing.http_get(server.running.health_port, path)


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


async def scrape(server: MaestroUnderTest) -> probing.Samples:
    assert server.running.metrics_port is not None
    return await probing.scrape(server.running.metrics_port)


QUERY = "/fleetplane.maestro.v1.MaestroQuery"


def handled(samples: probing.Samples, method: str, code: str) -> float:
    return probing.value(samples, "maestro_grpc_server_handled_total", code=code, method=method)


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


def config_map_work(name: str) -> bundles.ManifestBundle:
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}}
    return bundles.ManifestBundle(manifests=[manifest])


async def test_an_agent_tells_its_probes_where_it_stands_and_its_scraper_what_it_did(
    pg_dsn: str,
    kafka_settings: KafkaSettings,
    kafka_bootstrap: str,
    identities: Identities,
    worker_clusters: list[kube.Cluster],
    infra_env: Environment,
    tmp_path: Path,
) -> None:
    settings = server_settings(pg_dsn, kafka_settings, identities, deletion_grace=timedelta(seconds=30))
    cluster = f"probed-{uuid.uuid4().hex[:6]}"
    running = await app.start(settings)
    try:
        under_test = MaestroUnderTest(running, settings, identities)
        async with under_test.client() as client:
            slot = (await client.create_consumer(cluster)).slot
    finally:
        await running.stop()
    assert slot is not None
    health, metrics = ports.free_port(), ports.free_port()
    log = tmp_path / "agent.log"
    args = [
        "maestro", "agent", "--cluster", cluster, "--kubeconfig", str(worker_clusters[0].kubeconfig),
        "--kafka", kafka_bootstrap, "--server", f"127.0.0.1:{settings.port}",
        "--tls-dir", str(identities.issue(Identity.cluster(cluster, slot))),
        "--topic-prefix", settings.topics.prefix, "--refresh", "5",
        "--health-port", str(health), "--metrics-port", str(metrics),
    ]  # fmt: skip

    async def readyz(wanted: str) -> tuple[int, str] | None:
        """/readyz's answer once it holds ``wanted``."""
        found = await probing.answers(health, "/readyz")
        return found if found is not None and wanted in found[1] else None

    async with probing.fleetplane(infra_env, f"probes/agent-{cluster}", args, log):
        # The server is down: the agent lives, and says what it waits for.
        waiting = f"waiting for its placement from Maestro at 127.0.0.1:{settings.port}: UNAVAILABLE"
        status, text = await probing.eventually(lambda: readyz(waiting), "the agent waits", log=log)
        assert status == 503 and text.startswith(waiting), text
        assert await probing.http_get(health, "/healthz") == (200, "ok\n")

        running = await app.start(settings)
        try:
            ready = await probing.eventually(lambda: readyz("ready"), "the agent ready", log=log)
            assert ready == (200, "ready\n")
            before = await probing.scrape(metrics)
            assert probing.value(before, "maestro_agent_applies_total", outcome="applied") == 0
            work = uuid.uuid4()
            async with MaestroUnderTest(running, settings, identities).client() as client:
                await client.apply(cluster, work, config_map_work(f"probed-{work.hex[:8]}"))

                async def applied_and_reported() -> probing.Samples | None:
                    found = await probing.scrape(metrics)
                    applied = probing.value(found, "maestro_agent_applies_total", outcome="applied")
                    reported = probing.value(found, "maestro_agent_status_reports_total")
                    return found if applied == 1 and reported else None

                after = await probing.eventually(applied_and_reported, "the apply counted", log=log)
                await client.delete(cluster, work)

                async def deleted() -> float:
                    return probing.value(await probing.scrape(metrics), "maestro_agent_deletions_total")

                await probing.eventually(deleted, "the deletion counted", log=log)
        finally:
            await running.stop()

    assert probing.value(after, "maestro_agent_apply_seconds_count") == 1
    assert probing.value(after, "maestro_agent_spec_events_total", outcome="handled") == 1
    assert probing.value(after, "maestro_agent_bundles") == 1
    assert ("maestro_agent_consumer_restarts_total", ()) in after
    assert ("maestro_agent_spec_lag_messages", ()) in after
    lifetime = probing.value(after, "maestro_agent_certificate_expiry_seconds")
    assert 0 < lifetime <= authority.DEFAULT_LIFETIME.total_seconds()
    assert not {v for v in probing.label_values(after) if cluster in v or work.hex[:8] in v}
