"""The pipeline the chaos suite strikes, shared by every fault, and how a rollout's outcome is read.

Two Maestro server replicas (``fleetplane maestro server`` processes) on a PostgreSQL of their own,
started durable (fsync on: it is killed -9), and the session's three-broker Kafka (its topics of
three replicas, two in sync before a write is acknowledged, so it survives the loss of a broker);
one agent process per worker cluster. The first cluster's agent reaches Kafka through a
`SeverableRelay` per broker on loopback (each broker advertises its relay to clients that bootstrap
there: ``localinfra.kafka_config.Relayed``), so it alone can be cut off from the brokers. Each
agent looks its placement up on a replica of its own. Every process can be killed -9 and started
again with the same command line.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import psycopg
import pytest
from kubernetes import client as kube_client

from benchmarks.chaos import leaders, outcome
from benchmarks.chaos.rollout import LABEL, Rollout
from localinfra import process
from localinfra.environment import Environment
from localinfra.kafka_cluster import Brokers
from localinfra.tcpproxy import SeverableRelay
from maestro.api import queries
from maestro.client import MaestroClient
from tests.integration.maestro.failures import AgentProcess, Managed, Rig, ServerProcess, status_reports

#: the name of the chaos suite's PostgreSQL in the session environment
POSTGRES = "chaos-postgres"
#: the servers' topics survive the loss of a broker: three copies, two in sync before a write is acknowledged
HA_FLAGS = ("--topic-replication-factor", "3", "--topic-min-insync-replicas", "2")


@dataclasses.dataclass
class Chaos:
    env: Environment
    rig: Rig
    servers: list[ServerProcess]
    #: the agent of each worker cluster, in the rig's cluster order; the first one is relayed
    agents: list[AgentProcess]
    #: the first agent's relay to each broker, in broker order
    relays: list[SeverableRelay]
    brokers: Brokers
    dsn: str

    def note(self, what: str) -> None:
        self.rig.note(what)

    def live_server(self) -> ServerProcess:
        for server in self.servers:
            if server.alive:
                return server
        pytest.fail(f"no Maestro server replica is running\n{self.rig.tails()}", pytrace=False)

    def not_running(self) -> list[str]:
        """Which of the processes the next fault needs is not running (empty: all are)."""
        down = [p.short for p in [*self.servers, *self.agents] if not p.alive]
        if not process.is_alive(self.env.processes[POSTGRES]):
            down.append(POSTGRES)
        down += [name for i, name in enumerate(self.brokers.names) if not self.brokers.alive(i)]
        if any(relay.cut_off for relay in self.relays):
            down.append("the agent's relay to Kafka")
        return down

    # what a user sees

    async def snapshot(self, rollout: Rollout, *, topics: bool) -> outcome.Snapshot:
        """The rollout's objects, records, stored bundles and outbox; the status reports sent for
        it when ``topics`` (read after everything else, so a stored status was sent before)."""
        ids = {str(w.id) for w in rollout.works}
        objects, records = await asyncio.to_thread(self._in_clusters, rollout, ids)
        async with MaestroClient(
            self.live_server().address, source="chaos-observer", credentials=self.rig.credentials()
        ) as reader:
            async with asyncio.timeout(30):
                listed, _ = await reader.list(queries.ResourceFilter(source=rollout.source))
        stored = {
            r.bundle.id: outcome.Stored(
                version=r.bundle.version,
                status_version=r.status_version,
                applied=r.status is not None
                and any(
                    c.get("type") == "Applied" and c.get("status") == "True" for c in r.status.conditions
                ),
                sequence_id=r.status.sequence_id if r.status is not None else 0,
                deleting=r.bundle.deleting,
            )
            for r in listed
        }
        async with await psycopg.AsyncConnection.connect(self.dsn, connect_timeout=10) as conn:
            row = await (await conn.execute("SELECT count(*) FROM outbox")).fetchone()
        sent = await asyncio.to_thread(self.sent_statuses, ids) if topics else None
        return outcome.Snapshot(objects, records, stored, sent, int(row[0]) if row else 0)

    def _in_clusters(
        self, rollout: Rollout, ids: set[str]
    ) -> tuple[dict[str, dict[str, outcome.LiveObject]], dict[str, list[outcome.AppliedRecord]]]:
        objects, records = {}, {}
        for cluster in self.rig.clusters:
            reply: Any = kube_client.CoreV1Api(self.rig.api(cluster)).list_namespaced_config_map(
                rollout.namespace, label_selector=f"{LABEL}={rollout.id}", _preload_content=False
            )
            objects[cluster.name] = {
                cm["metadata"]["name"]: outcome.LiveObject(
                    cm["metadata"]["uid"], cm["data"]["work"], int(cm["data"]["revision"])
                )
                for cm in _items(reply)
            }
            records[cluster.name] = [
                outcome.AppliedRecord(
                    r["spec"]["resourceId"],
                    r["spec"].get("version", 0),
                    tuple(
                        (a["name"], a["uid"])
                        for a in (r.get("status") or {}).get("appliedResources") or []
                        if a.get("resource") == "configmaps"
                    ),
                )
                for r in self.rig.applied_records(cluster)
                if r["spec"]["resourceId"] in ids
            ]
        return objects, records

    def sent_statuses(self, ids: set[str]) -> dict[uuid.UUID, list[int]]:
        """The status sequence ids sent for each of the works ``ids``, in the order sent."""
        topics = [self.rig.topics.status_topic(slot) for slot in self.rig.slots.values()]
        sent: dict[uuid.UUID, list[int]] = {}
        for report in status_reports(self.rig.kafka, topics):
            if str(report.resource_id) in ids:
                sent.setdefault(report.resource_id, []).append(report.status.sequence_id)
        return sent

    async def wait_exact(self, rollout: Rollout, timeout: float = 300) -> float:
        """Wait until the rollout's outcome is exact; return the seconds it took. Fails at the first
        violation, or at ``timeout`` with what is still pending and the processes' logs."""
        intended = rollout.intended()
        started = time.monotonic()
        next_note = started + 15
        while True:
            verdict = outcome.judge(intended, await self.snapshot(rollout, topics=False))
            if not verdict.violations and verdict.pending == [outcome.TOPICS_UNREAD]:
                verdict = outcome.judge(intended, await self.snapshot(rollout, topics=True))
                if verdict.exact:
                    return time.monotonic() - started
            if verdict.violations:
                pytest.fail(
                    f"rollout {rollout.id} went wrong:\n{verdict.summary()}\n{self.rig.tails()}",
                    pytrace=False,
                )
            if time.monotonic() > started + timeout:
                pytest.fail(
                    f"rollout {rollout.id}: not exact within {timeout:.0f}s:\n{verdict.summary()}\n"
                    f"{self.rig.tails()}",
                    pytrace=False,
                )
            if time.monotonic() > next_note:
                self.note(
                    f"waiting for rollout {rollout.id}: {len(verdict.pending)} pending, "
                    f"e.g. {verdict.pending[:2]}"
                )
                next_note += 15
            await asyncio.sleep(1)


def _items(reply: Any) -> list[dict[str, Any]]:
    return list(json.loads(reply.data)["items"])


class LeaderReplica(Managed):
    """One replica of a leader-elected ``fleetplane`` service; ready once it competes for the Lease."""

    def identity(self) -> str | None:
        """Who it is in the Lease, once it has said so."""
        return leaders.identity_in(self.log)

    def is_ready(self) -> bool:
        return self.identity() is not None


async def until(
    what: str,
    check: Callable[[], Awaitable[tuple[bool, Any]]],
    replicas: Sequence[Managed],
    *,
    timeout: float = 240,
    period: float = 0.5,
) -> Any:
    """Wait until ``check`` says done and return what it saw; fail at ``timeout`` with the last
    thing seen and the ends of the replicas' logs."""
    try:
        return await leaders.until(what, check, timeout=timeout, period=period)
    except AssertionError as exc:
        logs = "\n".join(f"--- {r.short} ({r.log}):\n{r.tail(30)}" for r in replicas)
        pytest.fail(f"{exc}\n{logs}", pytrace=False)
