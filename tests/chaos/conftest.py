"""The chaos suite's pipeline (`tests.chaos.environment`), started once for every fault of the suite
on the session's Kafka and worker clusters (tests/conftest.py), with a PostgreSQL of its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from localinfra import kafka, kube, postgres
from localinfra.environment import Environment
from localinfra.tcpproxy import SeverableRelay
from tests.chaos.environment import POSTGRES, Chaos
from tests.conftest import KafkaAs
from tests.integration.maestro.failures import Rig, start_servers


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
async def chaos(
    infra_env: Environment,
    kafka_broker: kafka.Kafka,
    kafka_as: KafkaAs,
    worker_clusters: list[kube.Cluster],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Chaos]:
    endpoint = infra_env.endpoint("kafka")
    relayed, upstream = endpoint["relayed_bootstrap"], endpoint["relayed_upstream"]
    relay = await SeverableRelay(_port(relayed), "127.0.0.1", _port(upstream)).start()
    # fsync on (durable): the server is killed -9 and must come back with every committed row.
    pg = await asyncio.to_thread(postgres.start, infra_env, POSTGRES, durable=True)
    dsn = await asyncio.to_thread(pg.create_database, "chaos")
    rig = Rig(infra_env, dsn, kafka_as, worker_clusters, tmp_path_factory.mktemp("chaos"), "chaos")
    try:
        await asyncio.to_thread(rig.create_namespace)
        servers = await start_servers(rig, "server-a", "server-b")
        agents = [
            rig.agent(cluster, servers[i % len(servers)], start=False, kafka=relayed if i == 0 else None)
            for i, cluster in enumerate(rig.clusters)
        ]
        await asyncio.gather(*(asyncio.to_thread(a.start) for a in agents))
        yield Chaos(infra_env, rig, servers, agents, relay, dsn)
    finally:
        await rig.close()
        await relay.close()
        await asyncio.to_thread(infra_env.stop_process, POSTGRES)
