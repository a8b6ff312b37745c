"""Nothing lost when a process of the Maestro pipeline dies: real processes, real kill -9.

Servers and agents run as `fleetplane maestro server|agent` OS processes on the session's
PostgreSQL, Kafka and two worker kube-apiservers, each test under its own Kafka topic prefix. A
source creates ``CREATES`` bundles (one ConfigMap each, spread over both clusters), retrying a call
that fails UNAVAILABLE as a source does, while one process is killed in the middle of the load:

1. two server replicas on one database and Kafka, the source's creates spread over both; one
   replica is killed -9 and stays down;
2. an agent is killed -9 in the middle of its batch, then started again;
3. the only server is killed -9 and started again (creates sent while it is down are retried);
4. a worker's kube-apiserver is stopped in the middle of its agent's batch and started again
   ``API_DOWN_SECONDS`` later on the same port, certificates and etcd prefix;
5. the Kafka broker is stopped while agents are in the middle of their batch, stays down for
   ``KAFKA_DOWN_SECONDS`` while the rest of the creates is accepted, and is started again on the
   same port and data (last: the session's broker is shared; it is healthy again at the end).

After each, every bundle is applied exactly once, as the design makes it observable: the exact
ConfigMaps in each cluster (label-selected), one applied record (AppliedBundle) per (resource,
version) owning the live object, every bundle's status stored in the query API for its version,
and no status sequence id sent or stored twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from localinfra import kafka, kube, process
from localinfra.environment import Environment
from tests.conftest import KafkaAs
from tests.integration.maestro.failures import (
    AgentProcess,
    Load,
    Rig,
    ServerProcess,
    eventually,
    rig_of,
    running,
    start_servers,
    wait_exactly_once,
    wait_for_config_maps,
)

pytestmark = pytest.mark.integration

# Creates per test (the 500), spread evenly over the two worker clusters.
CREATES = 500
# How long the broker stays down: longer than a producer's 30 s flush, as a broker restart with
# log recovery can take; agents and servers must wait it out, not give up.
KAFKA_DOWN_SECONDS = 40.0
# How long a worker's kube-apiserver stays down (the agent retries within its 60 s budget).
API_DOWN_SECONDS = 10.0


@pytest.fixture
async def rig(
    infra_env: Environment,
    pg_dsn: str,
    kafka_as: KafkaAs,
    worker_clusters: list[kube.Cluster],
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Rig]:
    async with rig_of(infra_env, pg_dsn, kafka_as, worker_clusters, tmp_path_factory, request) as made:
        yield made


async def start_agents(rig: Rig, servers: list[ServerProcess]) -> list[AgentProcess]:
    """One agent per cluster, side by side, each looking its placement up on one of ``servers``."""
    agents = [rig.agent(c, servers[i % len(servers)], start=False) for i, c in enumerate(rig.clusters)]
    await asyncio.gather(*(asyncio.to_thread(a.start) for a in agents))
    return agents


async def test_two_replicas_one_killed(rig: Rig) -> None:
    replica_a, replica_b = await start_servers(rig, "server-a", "server-b")
    await start_agents(rig, [replica_a, replica_b])
    works = rig.plan(CREATES)
    load = Load(rig, [replica_a.address, replica_b.address], works)
    async with running(load):
        await load.until_acknowledged(CREATES // 2)
        replica_a.kill_hard()
        killed_at = load.acknowledged
        rig.note(f"server-a killed -9 after {killed_at} creates accepted")
    assert killed_at < CREATES, "the load finished before the replica was killed"
    assert load.acknowledged == CREATES
    # The survivor takes over the dead replica's outbox leases and status partitions.
    await wait_exactly_once(rig, replica_b.address, works)
    assert replica_b.alive and not replica_a.alive


async def test_agent_killed_mid_batch_and_restarted(rig: Rig) -> None:
    (server,) = await start_servers(rig, "server")
    victim, _ = await start_agents(rig, [server])
    works = rig.plan(CREATES)
    share = sum(1 for w in works if w.cluster == rig.clusters[0].name)
    load = Load(rig, [server.address], works)
    async with running(load):
        held = await wait_for_config_maps(rig, rig.clusters[0], share // 3)
        victim.kill_hard()
        rig.note(f"{victim.short} killed -9 holding {held}/{share} ConfigMaps")
        await asyncio.to_thread(victim.start)
        rig.note(f"{victim.short} started again")
    assert held < share, f"the agent had applied all {share} bundles before it was killed"
    await wait_exactly_once(rig, server.address, works)


async def test_only_server_killed_and_restarted(rig: Rig) -> None:
    (server,) = await start_servers(rig, "server")
    await start_agents(rig, [server])
    works = rig.plan(CREATES)
    load = Load(rig, [server.address], works)
    async with running(load):
        await load.until_acknowledged(CREATES // 2)
        server.kill_hard()
        killed_at = load.acknowledged
        rig.note(f"server killed -9 after {killed_at} creates accepted")
        # The source sees the server gone (UNAVAILABLE) and keeps retrying while it is down.
        await eventually(
            lambda: (load.retried > 0, dict(load.retries)),
            timeout=30,
            what="the source to see UNAVAILABLE",
            rig=rig,
        )
        await asyncio.to_thread(server.start)
        rig.note(f"server started again; {load.acknowledged} creates accepted, retries {dict(load.retries)}")
    assert killed_at < CREATES, "the load finished before the server was killed"
    assert load.acknowledged == CREATES and load.retries["UNAVAILABLE"] > 0, dict(load.retries)
    await wait_exactly_once(rig, server.address, works)


async def test_worker_api_server_restarted(rig: Rig, infra_env: Environment) -> None:
    (server,) = await start_servers(rig, "server")
    await start_agents(rig, [server])
    works = rig.plan(CREATES)
    cluster = rig.clusters[0]
    share = sum(1 for w in works if w.cluster == cluster.name)
    load = Load(rig, [server.address], works)
    async with running(load):
        held = await wait_for_config_maps(rig, cluster, share // 4)
        rig.note(f"restarting {cluster.name}'s kube-apiserver holding {held}/{share} ConfigMaps")
        await asyncio.to_thread(
            kube.restart_apiserver, infra_env, cluster.name, down_seconds=API_DOWN_SECONDS
        )
        rig.note(f"{cluster.name}'s kube-apiserver is ready again")
    assert held < share, f"{cluster.name} held all {share} ConfigMaps before its API server restarted"
    await wait_exactly_once(rig, server.address, works)


async def test_kafka_broker_restarted(rig: Rig, infra_env: Environment, kafka_bootstrap: str) -> None:
    (server,) = await start_servers(rig, "server")
    await start_agents(rig, [server])
    works = rig.plan(CREATES)
    share = sum(1 for w in works if w.cluster == rig.clusters[0].name)
    # Half the creates first; the other half is sent while the broker is down.
    load = Load(rig, [server.address], works, hold_after=CREATES // 2)
    try:
        async with running(load):
            held = await wait_for_config_maps(rig, rig.clusters[0], share // 6)
            rig.note(f"stopping Kafka: {load.acknowledged} creates accepted, {held}/{share} in worker-1")
            await asyncio.to_thread(process.stop, infra_env.processes["kafka"])
            stopped = time.monotonic()
            rig.note("Kafka stopped")
            # Creates are still accepted: they wait in PostgreSQL's outbox for the broker.
            load.release()
            await load.until_acknowledged(CREATES)
            rig.note("every create accepted while Kafka is down")
            await asyncio.sleep(max(0.0, KAFKA_DOWN_SECONDS - (time.monotonic() - stopped)))
            assert not process.is_alive(infra_env.processes["kafka"])
            rig.note("starting Kafka again")
            await asyncio.to_thread(kafka.restart, infra_env)
            rig.note("Kafka answers again")
        assert held < share, f"worker-1 held all {share} ConfigMaps before Kafka stopped"
        assert kafka.Kafka.from_env(infra_env).bootstrap == kafka_bootstrap
        await wait_exactly_once(rig, server.address, works)
    finally:
        # The broker is the session's: whatever happened above, leave it running and answering.
        if not process.is_alive(infra_env.processes["kafka"]):
            await asyncio.to_thread(kafka.restart, infra_env)
        healthy = await asyncio.to_thread(kafka.round_trip, kafka.Kafka.from_env(infra_env))
        assert healthy, "the session's Kafka is not healthy after the test"
