"""Kafka's high availability for Maestro, on a real three-broker KRaft cluster (``kafka_ha``).

1. The spec and status topics are made with the replication and configs the server is given, and a
   limit changed between two starts of the server is set on the existing topics.
2. A rollout that creates, updates and deletes works on two clusters (real ``fleetplane maestro``
   server and agent processes) loses one broker to kill -9 in its middle: the broker that leads
   the first cluster's spec topic. With two brokers of three left every work converges, exactly
   once; the broker is then started again, catches up, and nothing changes: every object present
   exactly once in the right cluster, one applied record per (resource, version), every status
   of the applied version, nothing left in the outbox, every partition fully replicated.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from localinfra import kafka, kube
from localinfra.environment import Environment
from localinfra.kafka_cluster import Brokers
from maestro.client import MaestroClient
from maestro.server import app
from maestro.transport.client_config import max_message_bytes
from maestro.transport.connection import KafkaSettings
from maestro.transport.topic_settings import TopicSettings
from tests.conftest import KafkaAs
from tests.integration.maestro.conftest import Identities, MaestroUnderTest, server_settings
from tests.integration.maestro.failures import (
    AgentProcess,
    Load,
    Outcome,
    Rig,
    ServerProcess,
    Work,
    eventually,
    rig_of,
    running,
    wait_exactly_once,
    wait_for_config_maps,
)

pytestmark = pytest.mark.integration

# Topics that survive the loss of a broker: three copies, two in sync before a write is acknowledged.
HA_FLAGS = ("--topic-replication-factor", "3", "--topic-min-insync-replicas", "2")
# The rollout: works created and applied first; then, in one run of calls, CREATES_BEFORE new
# works (the broker is killed while the agents apply them), then, sent once it is down, UPDATES
# and DELETES of the first works interleaved with CREATES_AFTER more.
FIRST = 100
CREATES_BEFORE = 60
UPDATES = 30
DELETES = 20
CREATES_AFTER = 20


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


class Action(enum.Enum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


class Rollout(Load):
    """A source's calls, each retried as `Load` retries a create: creates, updates to revision 2
    (their bundle's version 2), deletes."""

    def __init__(
        self, rig: Rig, addresses: Sequence[str], steps: Sequence[tuple[Action, Work]], **kwargs: Any
    ) -> None:
        super().__init__(rig, addresses, [work for _, work in steps], **kwargs)
        self._actions = [action for action, _ in steps]

    async def _send(self, source: MaestroClient, index: int, work: Work) -> None:
        action = self._actions[index]
        if action is Action.UPDATE:
            await source.apply(work.cluster, work.id, self._rig.bundle(work, revision=2), create=False)
        elif action is Action.DELETE:
            await source.delete(work.cluster, work.id)
        else:
            await super()._send(source, index, work)


@pytest.fixture
async def rig(
    infra_env: Environment,
    pg_dsn: str,
    kafka_ha_as: KafkaAs,
    worker_clusters: list[kube.Cluster],
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Rig]:
    async with rig_of(infra_env, pg_dsn, kafka_ha_as, worker_clusters, tmp_path_factory, request) as made:
        yield made


async def start_pipeline(rig: Rig) -> tuple[ServerProcess, list[AgentProcess]]:
    """A server replica making topics of three replicas, the clusters registered, one agent each."""
    server = await asyncio.to_thread(rig.server, "server", extra=HA_FLAGS)
    async with MaestroClient(server.address, source="ha-setup", credentials=rig.credentials()) as setup:
        for cluster in rig.clusters:
            consumer = await setup.create_consumer(cluster.name)
            assert consumer.slot is not None
            rig.slots[cluster.name] = consumer.slot
    agents = [rig.agent(c, server, start=False) for c in rig.clusters]
    await asyncio.gather(*(asyncio.to_thread(a.start) for a in agents))
    return server, agents


def interleaved(*runs: Sequence[tuple[Action, Work]]) -> list[tuple[Action, Work]]:
    """One step of each run in turn, until all are used up."""
    out: list[tuple[Action, Work]] = []
    for i in range(max(len(r) for r in runs)):
        out += [r[i] for r in runs if i < len(r)]
    return out


async def test_broker_killed_during_a_rollout_and_restarted(rig: Rig, kafka_ha: Brokers) -> None:
    started = time.monotonic()
    server, _ = await start_pipeline(rig)
    works = rig.plan(FIRST + CREATES_BEFORE + CREATES_AFTER)
    first, before, after = (
        works[:FIRST],
        works[FIRST : FIRST + CREATES_BEFORE],
        works[FIRST + CREATES_BEFORE :],
    )
    updated, deleted = first[:UPDATES], first[UPDATES : UPDATES + DELETES]
    async with running(Load(rig, [server.address], first)):
        pass
    await wait_exactly_once(rig, server.address, first)
    rig.note(f"{FIRST} works applied before the rollout")

    steps = [(Action.CREATE, w) for w in before] + interleaved(
        [(Action.UPDATE, w) for w in updated],
        [(Action.DELETE, w) for w in deleted],
        [(Action.CREATE, w) for w in after],
    )
    rollout = Rollout(rig, [server.address], steps, hold_after=CREATES_BEFORE)
    target = rig.clusters[0]
    spec_topic = rig.topics.spec_topic(rig.slots[target.name])
    victim = await asyncio.to_thread(kafka_ha.leader_of, spec_topic)
    async with running(rollout):
        # Killed while the agent of the first cluster applies the new works: once it applied a
        # third of them (the updates and deletes wait until the broker is down).
        had = sum(1 for w in first if w.cluster == target.name)
        new = sum(1 for w in before if w.cluster == target.name)
        held = await wait_for_config_maps(rig, target, had + new // 3)
        await asyncio.to_thread(kafka_ha.kill, victim)
        rig.note(
            f"broker {victim} (pid {kafka_ha.pids[victim]}) killed -9; {target.name} holds {held}/{had + new}"
        )
        assert not kafka_ha.alive(victim)
        # The controller fences it and another in-sync replica leads its partitions.
        await eventually(
            lambda: ((leader := kafka_ha.leader_of(spec_topic)) != victim, leader),
            timeout=60,
            what=f"a new leader of {spec_topic}",
            rig=rig,
        )
        rollout.release()
        await rollout.until_acknowledged(len(steps))
        rig.note("every call of the rollout accepted")

    outcome = Outcome(
        [w for w in works if w not in deleted], versions={w.id: 2 for w in updated}, gone=deleted
    )
    # Two brokers of three carry the whole rollout.
    await wait_exactly_once(rig, server.address, outcome)
    assert not kafka_ha.alive(victim), "the rollout converged only once the broker was back"
    rig.note("converged with a broker down")

    await asyncio.to_thread(kafka_ha.restart, victim)
    await asyncio.to_thread(kafka_ha.wait_in_sync)
    rig.note(f"broker {victim} started again and in sync")
    await wait_exactly_once(rig, server.address, outcome)
    await eventually(
        lambda: ((depth := rig.outbox_depth()) == 0, depth),
        timeout=30,
        what="an empty outbox",
        rig=rig,
    )
    assert await asyncio.to_thread(kafka_ha.under_replicated) == []
    rig.note(f"done in {time.monotonic() - started:.0f}s")
