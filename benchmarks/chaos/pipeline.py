"""The pipeline ``bench chaos`` strikes: the chaos suite's, at scale, with simulated agents.

In a temporary environment: PostgreSQL with fsync on (it is killed -9), a three-broker KRaft Kafka
(every topic three replicas, two in sync; or one broker, which starts faster), two Maestro server
replicas on them, and one simulated agent process per cluster (`benchmarks.chaos.agent`), each
looking its placement up on a replica of its own. The first agent reaches Kafka through a
`SeverableRelay` per broker (each broker advertises its relay to clients that bootstrap there:
``localinfra.kafka_config.Relayed``), so it alone can be cut off. Every process can be killed -9
and started again with its command line.

What a user would see of a rollout (`snapshot`) is read as the chaos suite reads it, but from the
simulated clusters' files (`cluster_store.ClusterView`) where the suite lists ConfigMaps and
applied records in kube-apiservers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg

from benchmarks.chaos import outcome
from benchmarks.chaos.cluster_store import ClusterView
from benchmarks.chaos.rollout import LABEL, Rollout
from benchmarks.chaos.status_topics import status_reports
from benchmarks.maestro_setup import Report, Security
from localinfra import kafka, kafka_cluster, platform, ports, postgres, process
from localinfra.environment import Environment
from localinfra.tcpproxy import SeverableRelay
from maestro.api import consumers, queries
from maestro.client import MaestroClient
from maestro.transport import layout
from trust.identity import Identity

#: the namespace of the rollouts' ConfigMaps in every simulated cluster
NAMESPACE = "chaos"
KAFKA = "kafka"
POSTGRES = "postgres"


@dataclasses.dataclass
class Member:
    """A process of the pipeline, killed -9 and started again with its recorded command line."""

    env: Environment
    name: str
    #: what says it is ready again after a start (None: running is enough)
    ready: Callable[[], bool] | None = None

    @property
    def short(self) -> str:
        return self.name

    @property
    def alive(self) -> bool:
        return process.is_alive(self.env.processes[self.name])

    def kill_hard(self) -> None:
        process.kill_hard(self.env.processes[self.name])

    def start(self) -> None:
        old = self.env.processes[self.name]
        record = self.env.add_process(process.spawn(self.name, old.argv, Path(old.log)))
        if self.ready is not None:
            process.wait_until(record, self.ready, timeout=platform.START_TIMEOUT, what="ready again")


@dataclasses.dataclass
class ChaosPipeline:
    env: Environment
    root: Path
    security: Security
    brokers: kafka_cluster.Brokers
    names: layout.Layout
    servers: list[Member]
    addresses: list[str]
    #: the registered clusters, in agent order
    clusters: list[consumers.Consumer]
    agents: list[Member]
    #: the first agent's relay to each broker
    relays: list[SeverableRelay]
    views: dict[str, ClusterView]
    report: Report

    def not_running(self) -> list[str]:
        """What the next fault needs that is not running (empty: the pipeline is whole)."""
        down = [m.name for m in [*self.servers, *self.agents] if not m.alive]
        down += [name for i, name in enumerate(self.brokers.names) if not self.brokers.alive(i)]
        if not process.is_alive(self.env.processes[POSTGRES]):
            down.append(POSTGRES)
        if any(r.cut_off for r in self.relays):
            down.append(f"{self.agents[0].name}'s relay to Kafka")
        return down

    def live_address(self) -> str:
        for server, address in zip(self.servers, self.addresses, strict=True):
            if server.alive:
                return address
        raise RuntimeError("no Maestro server replica is running")

    def rollout(self, works: int) -> Rollout:
        return Rollout(
            self.addresses,
            self.security.credentials(),
            [c.name for c in self.clusters],
            NAMESPACE,
            works,
        )

    async def snapshot(self, rollout: Rollout, *, topics: bool) -> outcome.Snapshot:
        """The rollout's objects and applied records in each simulated cluster, its bundles as the
        query API lists them, the outbox's depth; with ``topics`` the status reports sent (read
        last, so that a stored status was sent before)."""
        ids = {str(w.id) for w in rollout.works}
        objects, records = await asyncio.to_thread(self._in_clusters, rollout, ids)
        async with MaestroClient(
            self.live_address(), source="chaos-observer", credentials=self.security.credentials()
        ) as reader:
            async with asyncio.timeout(30):
                listed, _ = await reader.list(queries.ResourceFilter(source=rollout.source))
        stored = {r.bundle.id: outcome.stored_of(r) for r in listed}
        pg = postgres.Postgres.from_env(self.env, POSTGRES)
        async with await psycopg.AsyncConnection.connect(pg.dsn("maestro"), connect_timeout=10) as conn:
            row = await (await conn.execute("SELECT count(*) FROM outbox")).fetchone()
        sent = await asyncio.to_thread(self.sent_statuses, ids) if topics else None
        return outcome.Snapshot(objects, records, stored, sent, int(row[0]) if row else 0)

    def _in_clusters(
        self, rollout: Rollout, ids: set[str]
    ) -> tuple[dict[str, dict[str, outcome.LiveObject]], dict[str, list[outcome.AppliedRecord]]]:
        objects, records = {}, {}
        for cluster, view in self.views.items():
            view.refresh()
            objects[cluster] = {
                name: outcome.LiveObject(
                    cm["metadata"]["uid"], cm["data"]["work"], int(cm["data"]["revision"])
                )
                for (_, resource, namespace, name), cm in view.objects.items()
                if resource == "configmaps"
                and namespace == rollout.namespace
                and (cm["metadata"].get("labels") or {}).get(LABEL) == rollout.id
            }
            records[cluster] = [
                outcome.applied_record_of(r) for r in view.records.values() if r["spec"]["resourceId"] in ids
            ]
        return objects, records

    def sent_statuses(self, ids: set[str]) -> dict[uuid.UUID, list[int]]:
        """The status sequence ids sent for each of the works ``ids``, in the order sent."""
        reader = self.security.kafka(self.brokers.kafka, platform.SERVER_IDENTITY, server=True)
        sent: dict[uuid.UUID, list[int]] = {}
        for report in status_reports(reader, [c.status_topic for c in self.clusters]):
            if str(report.resource_id) in ids:
                sent.setdefault(report.resource_id, []).append(report.status.sequence_id)
        return sent

    async def until_exact(self, rollout: Rollout, timeout: float) -> outcome.Verdict:
        """The rollout's verdict once its outcome is exact, at the first violation, or at
        ``timeout`` (then what is still pending)."""
        intended = rollout.intended()
        deadline = time.monotonic() + timeout
        while True:
            verdict = outcome.judge(intended, await self.snapshot(rollout, topics=False))
            if not verdict.violations and verdict.pending == [outcome.TOPICS_UNREAD]:
                verdict = outcome.judge(intended, await self.snapshot(rollout, topics=True))
                if verdict.exact:
                    return verdict
            if verdict.violations or time.monotonic() > deadline:
                return verdict
            await asyncio.sleep(1)

    async def close(self) -> None:
        for relay in self.relays:
            await relay.close()


async def start(env: Environment, root: Path, agents: int, brokers: int, report: Report) -> ChaosPipeline:
    """Start every part of the pipeline in ``env`` (its logs in ``root``); the caller ends the run
    (``maestro_setup.end_run``) even when this fails half way, and closes the pipeline."""
    kafka_of = "a three-broker Kafka" if brokers == 3 else "a one-broker Kafka"
    report(f"[bench] starting PostgreSQL (fsync on) and {kafka_of} (TLS, client certificates, ACLs) ...")
    pg = await asyncio.to_thread(postgres.start, env, POSTGRES, durable=True)
    relay_ports = [ports.free_port() for _ in range(brokers)]
    await asyncio.to_thread(kafka.start, env, KAFKA, brokers=brokers, relay_ports=relay_ports)
    cluster = kafka_cluster.Brokers.of(env, KAFKA)
    security = Security(env)
    report("[bench] starting two Maestro server replicas ...")
    dsn = await asyncio.to_thread(pg.create_database, "maestro")
    names = layout.Layout(f"bench.{uuid.uuid4().hex[:8]}")
    tls = security.tls(platform.SERVER_IDENTITY, server=True)
    launched = [
        platform.launch_server(
            env,
            f"maestro-server-{i}",
            root / f"maestro-server-{i}.log",
            dsn=dsn,
            kafka=cluster.kafka.bootstrap,
            tls=tls,
            server_id=f"bench-{i}",
            log_level="warning",
            extra=["--topic-prefix", names.prefix],
        )
        for i in range(2)
    ]
    for server in launched:
        await asyncio.to_thread(server.wait)
    servers = [
        Member(env, s.record.name, functools.partial(platform.serving, s.address, s.tls)) for s in launched
    ]
    addresses = [s.address for s in launched]
    upstreams = env.endpoint(KAFKA)["relayed_upstream"].split(",")
    relays = [
        await SeverableRelay(port, "127.0.0.1", int(upstream.rsplit(":", 1)[1])).start()
        for port, upstream in zip(relay_ports, upstreams, strict=True)
    ]
    pipeline = ChaosPipeline(
        env, root, security, cluster, names, servers, addresses, [], [], relays, {}, report
    )
    report(f"[bench] registering {agents} clusters and starting their simulated agents ...")
    async with MaestroClient(
        addresses[0], source="bench-chaos", credentials=security.credentials()
    ) as client:
        for i in range(agents):
            pipeline.clusters.append(await client.create_consumer(f"chaos-{i:02d}"))
    for i, consumer in enumerate(pipeline.clusters):
        assert consumer.slot is not None
        identity = security.tls(Identity.cluster(consumer.name, consumer.slot))
        assert identity is not None
        state = root / "clusters" / f"{consumer.name}.jsonl"
        state.parent.mkdir(exist_ok=True)
        pipeline.views[consumer.name] = ClusterView(state)
        bootstrap = env.endpoint(KAFKA)["relayed_bootstrap"] if i == 0 else cluster.kafka.bootstrap
        argv = [
            sys.executable,
            "-m",
            "benchmarks.chaos.agent",
            "--cluster",
            consumer.name,
            "--state",
            str(state),
            "--server",
            addresses[i % len(addresses)],
            "--kafka",
            bootstrap,
            "--tls-dir",
            str(identity.ca.parent),
            "--topic-prefix",
            names.prefix,
        ]
        name = f"agent-{consumer.name}"
        env.add_process(process.spawn(name, argv, root / f"{name}.log"))
        pipeline.agents.append(Member(env, name))
    return pipeline
