"""The chaos suite's pipeline (`tests.chaos.environment`), started once for every fault of the suite
on the session's three-broker Kafka (``kafka_ha``) and worker clusters (tests/conftest.py), with a
PostgreSQL of its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from localinfra import kube, postgres
from localinfra.environment import Environment
from localinfra.kafka_cluster import Brokers
from localinfra.tcpproxy import SeverableRelay
from tests.chaos.environment import HA_FLAGS, POSTGRES, Chaos
from tests.conftest import KafkaAs
from tests.integration.maestro.failures import Rig, start_servers


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


# One pipeline for every test of the suite (the package).
@pytest.fixture(scope="package")
async def chaos(
    infra_env: Environment,
    kafka_ha: Brokers,
    kafka_ha_as: KafkaAs,
    worker_clusters: list[kube.Cluster],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Chaos]:
    endpoint = infra_env.endpoint(kafka_ha.name)
    relayed: str = endpoint["relayed_bootstrap"]
    relays = [
        await SeverableRelay(_port(relay), "127.0.0.1", _port(upstream)).start()
        for relay, upstream in zip(relayed.split(","), endpoint["relayed_upstream"].split(","), strict=True)
    ]
    # fsync on (durable): the server is killed -9 and must come back with every committed row.
    pg = await asyncio.to_thread(postgres.start, infra_env, POSTGRES, durable=True)
    dsn = await asyncio.to_thread(pg.create_database, "chaos")
    rig = Rig(infra_env, dsn, kafka_ha_as, worker_clusters, tmp_path_factory.mktemp("chaos"), "chaos")
    try:
        await asyncio.to_thread(rig.create_namespace)
        servers = await start_servers(rig, "server-a", "server-b", extra=HA_FLAGS)
        agents = [
            rig.agent(cluster, servers[i % len(servers)], start=False, kafka=relayed if i == 0 else None)
            for i, cluster in enumerate(rig.clusters)
        ]
        await asyncio.gather(*(asyncio.to_thread(a.start) for a in agents))
        yield Chaos(infra_env, rig, servers, agents, relays, kafka_ha, dsn)
    finally:
        await rig.close()
        for relay in relays:
            await relay.close()
        await asyncio.to_thread(infra_env.stop_process, POSTGRES)
