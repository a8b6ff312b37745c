"""What the Maestro failure tests are made of: real processes, a retrying source, exactly-once checks.

- ``Rig`` runs ``fleetplane maestro server`` and ``fleetplane maestro agent`` as detached OS
  processes (``localinfra.process.spawn``) on the session's PostgreSQL, Kafka and worker clusters,
  each test under a Kafka topic prefix of its own; any of them can be killed -9 and started again
  with the same command line. The processes are recorded in the session environment while they
  exist, so a failing test's report carries the log of every one that died.
- ``Load`` is a source creating bundles (one labelled ConfigMap each) through the source API, as a
  source would: a call that fails UNAVAILABLE (or times out) is sent again, to the next server
  address, until it is accepted; a retried create of the same bundle is a no-op in Maestro.
- ``wait_exactly_once`` waits until every bundle is applied and its status stored, then checks
  what "exactly once" means in the design: exact object counts, one applied record per
  (resource, version), the status of the applied version in the query API, and no status sequence
  id sent or stored twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from kubernetes import client as kube_client
from kubernetes import config as kube_config
from kubernetes.client.exceptions import ApiException

from benchmarks.chaos.calls import Calls, in_background
from benchmarks.chaos.status_topics import status_reports
from localinfra import kafka as local_kafka
from localinfra import kube, pki, ports, process
from localinfra.environment import Environment
from localinfra.errors import InfraError
from maestro.agent import records
from maestro.agent.manifests import marker_value
from maestro.api import bundles, queries
from maestro.client import Credentials, MaestroClient
from maestro.transport import layout
from maestro.wire import channels
from tests.conftest import KafkaAs
from trust.identity import Identity

FLEETPLANE = str(Path(sys.prefix) / "bin" / "fleetplane")
RUN_LABEL = "failures.test.fleetplane.io/run"
# Status codes a source retries: the server is gone or did not answer in time.
RETRIED_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED"})


# -- processes -----------------------------------------------------------------------------------


class Managed:
    """One ``fleetplane maestro`` process: started, killed -9 and started again with the same argv."""

    def __init__(self, env: Environment, name: str, argv: Sequence[str], log_dir: Path) -> None:
        self.env = env
        self.name = name
        self.argv = tuple(argv)
        self.log_dir = log_dir
        self.record: process.ProcessRecord | None = None
        self.starts = 0

    @property
    def short(self) -> str:
        return self.name.rsplit("/", 1)[-1]

    @property
    def log(self) -> Path:
        """The current run's log: each start writes a log of its own (``<name>.<n>.log``)."""
        return self.log_dir / f"{self.short}.{self.starts}.log"

    @property
    def alive(self) -> bool:
        return self.record is not None and process.is_alive(self.record)

    def is_ready(self) -> bool:
        raise NotImplementedError

    def start(self, timeout: float = 90) -> None:
        """Spawn and wait until ready; a process that dies first fails with its log tail."""
        assert not self.alive, f"{self.name} is already running"
        self.starts += 1
        self.record = self.env.add_process(process.spawn(self.name, self.argv, self.log))
        process.wait_until(self.record, self.is_ready, timeout=timeout, what="ready")

    def kill_hard(self) -> None:
        assert self.record is not None and self.alive, f"{self.name} is not running: nothing to kill"
        process.kill_hard(self.record)
        assert not process.is_alive(self.record), f"{self.name} survived kill -9"

    def stop(self) -> None:
        if self.record is not None:
            process.stop(self.record)

    def forget(self) -> None:
        """Stop it and drop it from the session environment."""
        self.env.stop_process(self.name)

    def tail(self, lines: int = 15) -> str:
        return process.log_tail(self.log, lines)


ADMIN = Identity.admin("failures-admin")


class ServerProcess(Managed):
    def __init__(
        self, env: Environment, name: str, argv: Sequence[str], log_dir: Path, port: int, probe: Credentials
    ) -> None:
        super().__init__(env, name, argv, log_dir)
        self.port = port
        self.probe = probe

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def is_ready(self) -> bool:
        with channels.channel(self.address, self.probe) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


class AgentProcess(Managed):
    def __init__(self, env: Environment, name: str, argv: Sequence[str], log_dir: Path, cluster: str) -> None:
        super().__init__(env, name, argv, log_dir)
        self.cluster = cluster

    def is_ready(self) -> bool:
        # Logged once the agent is assigned its partition and has asked the server for a resync.
        return f"agent for {self.cluster} reading" in self.log.read_text(errors="replace")


@dataclasses.dataclass(frozen=True)
class Work:
    """One bundle of the load: a ConfigMap ``name`` in ``cluster``."""

    id: uuid.UUID
    cluster: str
    name: str


class Rig:
    """The Maestro processes of one test, on the session's PostgreSQL, Kafka and worker clusters."""

    def __init__(
        self,
        env: Environment,
        dsn: str,
        kafka_as: KafkaAs,
        clusters: Sequence[kube.Cluster],
        log_dir: Path,
        test_name: str,
    ) -> None:
        self.env = env
        self.dsn = dsn
        self.kafka_as = kafka_as
        #: the server's identity (a Kafka super user)
        self.kafka = kafka_as(local_kafka.MAESTRO_SERVER)
        #: each cluster's placement slot, once registered (its agent's identity)
        self.slots: dict[str, int] = {}
        self.clusters = list(clusters)
        self.log_dir = log_dir
        self.run = uuid.uuid4().hex[:10]
        self.name = f"failures/{test_name}-{self.run}"
        self.topics = layout.Layout(f"test.failures.{self.run}")
        self.namespace = f"failures-{self.run}"
        self.processes: list[Managed] = []
        self._apis: dict[str, kube_client.ApiClient] = {}
        self._started = time.monotonic()
        self.timeline: list[str] = []
        # the session environment's CA: it issues the servers', the agents' and the clients' identities
        self.ca = pki.platform_ca(env)

    def identity(self, who: Identity, *, server: bool = False) -> Path:
        folder = self.log_dir / "identities" / f"{who.kind}-{who.name}-{uuid.uuid4().hex[:6]}"
        hosts = ("127.0.0.1", "localhost") if server else ()
        self.ca.issue(who, hosts=hosts, server=server).write(folder, "tls", self.ca.cert_pem)
        return folder

    def credentials(self, who: Identity = ADMIN) -> Credentials:
        return Credentials.from_folder(self.identity(who))

    def note(self, what: str) -> None:
        """Record a step of the test, with the seconds since the rig was made (shown on failure)."""
        line = f"{time.monotonic() - self._started:6.1f}s  {what}"
        self.timeline.append(line)
        print(line)

    # processes

    def server(self, name: str, *, start: bool = True, extra: Sequence[str] = ()) -> ServerProcess:
        """A server replica; ``extra`` flags are added to its command line."""
        port = ports.free_port()
        argv = [
            FLEETPLANE,
            "maestro",
            "server",
            "--dsn",
            self.dsn,
            "--kafka",
            self.kafka.bootstrap,
            "--port",
            str(port),
            "--server-id",
            f"maestro-{name}",
            "--topic-prefix",
            self.topics.prefix,
            "--log-level",
            "info",
            # one identity for every hop: its gRPC serving certificate, its Kafka principal
            "--tls-dir",
            str(tls := self.identity(Identity.service("maestro-server"), server=True)),
            *extra,
        ]
        probe = Credentials.from_folder(tls)
        server = ServerProcess(self.env, f"{self.name}/{name}", argv, self.log_dir, port, probe)
        self.processes.append(server)
        if start:
            server.start()
        return server

    def agent(
        self, cluster: kube.Cluster, server: ServerProcess, *, start: bool = True, kafka: str | None = None
    ) -> AgentProcess:
        """The agent of ``cluster``, looking its placement up on ``server`` and reaching Kafka at
        ``kafka`` (default: the broker's own address; a relay's, to cut it off)."""
        argv = [
            FLEETPLANE,
            "maestro",
            "agent",
            "--cluster",
            cluster.name,
            "--kubeconfig",
            str(cluster.kubeconfig),
            "--kafka",
            kafka or self.kafka.bootstrap,
            "--server",
            server.address,
            "--topic-prefix",
            self.topics.prefix,
            "--refresh",
            "2",
            "--log-level",
            "info",
            "--tls-dir",
            str(self.identity(Identity.cluster(cluster.name, self.slots[cluster.name]))),
        ]
        agent = AgentProcess(self.env, f"{self.name}/agent-{cluster.name}", argv, self.log_dir, cluster.name)
        self.processes.append(agent)
        if start:
            agent.start()
        return agent

    def outbox_depth(self) -> int:
        """Spec events the servers have yet to hand to Kafka (their outbox rows)."""
        with psycopg.connect(self.dsn) as conn:
            row = conn.execute("SELECT count(*) FROM outbox").fetchone()
        assert row is not None
        return int(row[0])

    def tails(self) -> str:
        """The test's timeline and the end of every process's current log, for failure messages."""
        logs = [
            f"--- {p.short} ({'alive' if p.alive else 'dead'}, start {p.starts}, {p.log}):\n{p.tail()}"
            for p in self.processes
        ]
        return "\n".join(["--- timeline:", *self.timeline, *logs])

    async def close(self) -> None:
        """Stop every process, then remove what the test left in the clusters."""
        problems = []
        for p in self.processes:
            try:
                await asyncio.to_thread(p.forget)
            except InfraError as exc:
                problems.append(str(exc))
        for cluster in self.clusters:
            await asyncio.to_thread(self._clean, cluster)
        for api in self._apis.values():
            api.close()
        assert not problems, problems

    # the clusters

    def api(self, cluster: kube.Cluster) -> kube_client.ApiClient:
        if cluster.name not in self._apis:
            self._apis[cluster.name] = kube_config.new_client_from_config(str(cluster.kubeconfig))
        return self._apis[cluster.name]

    def create_namespace(self) -> None:
        for cluster in self.clusters:
            kube_client.CoreV1Api(self.api(cluster)).create_namespace(
                kube_client.V1Namespace(metadata=kube_client.V1ObjectMeta(name=self.namespace))
            )

    def _clean(self, cluster: kube.Cluster) -> None:
        # The test's applied records go by name (other tests' records are not ours to remove); the
        # namespace takes the ConfigMaps with it (the cluster's controller manager empties it).
        custom = kube_client.CustomObjectsApi(self.api(cluster))
        for rid in self.record_ids(cluster):
            with contextlib.suppress(ApiException):
                custom.delete_cluster_custom_object(records.GROUP, records.VERSION, records.PLURAL, rid)
        with contextlib.suppress(ApiException):
            kube_client.CoreV1Api(self.api(cluster)).delete_namespace(self.namespace)

    def record_ids(self, cluster: kube.Cluster) -> list[str]:
        """Names of the applied records that belong to this test's bundles (they are resource ids)."""
        return [
            item["metadata"]["name"]
            for item in self.applied_records(cluster)
            if any(m.get("namespace") == self.namespace for m in item["spec"].get("manifests") or ())
        ]

    def applied_records(self, cluster: kube.Cluster) -> list[dict[str, Any]]:
        reply: Any = kube_client.CustomObjectsApi(self.api(cluster)).list_cluster_custom_object(
            records.GROUP,
            records.VERSION,
            records.PLURAL,
            label_selector=f"{records.CONSUMER_LABEL}={marker_value(cluster.name)}",
            _preload_content=False,
        )
        return list(json.loads(reply.data)["items"])

    def config_maps(self, cluster: kube.Cluster) -> dict[str, str]:
        """The test's ConfigMaps in ``cluster``: name -> uid."""
        # Raw JSON (_preload_content=False): a list of hundreds is read often while waiting.
        reply: Any = kube_client.CoreV1Api(self.api(cluster)).list_namespaced_config_map(
            self.namespace, label_selector=f"{RUN_LABEL}={self.run}", _preload_content=False
        )
        return {cm["metadata"]["name"]: cm["metadata"]["uid"] for cm in json.loads(reply.data)["items"]}

    # the load

    def plan(self, count: int) -> list[Work]:
        """``count`` bundles, spread evenly over the clusters."""
        names = [c.name for c in self.clusters]
        return [Work(uuid.uuid4(), names[i % len(names)], f"cm-{i:04d}") for i in range(count)]

    def bundle(self, work: Work, revision: int = 1) -> bundles.ManifestBundle:
        """The work's ConfigMap; a later ``revision`` (an update) changes its data."""
        return bundles.ManifestBundle(
            manifests=[
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {
                        "name": work.name,
                        "namespace": self.namespace,
                        "labels": {RUN_LABEL: self.run},
                    },
                    "data": {"work": str(work.id), "revision": str(revision)},
                }
            ]
        )


@contextlib.asynccontextmanager
async def rig_of(
    env: Environment,
    dsn: str,
    kafka_as: KafkaAs,
    clusters: Sequence[kube.Cluster],
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Rig]:
    """A test's `Rig`, named after it, its namespace made in every cluster; closed on leaving."""
    name = request.node.name.removeprefix("test_")
    made = Rig(env, dsn, kafka_as, clusters, tmp_path_factory.mktemp(name), name)
    await asyncio.to_thread(made.create_namespace)
    try:
        yield made
    finally:
        await made.close()


async def start_servers(rig: Rig, *names: str, extra: Sequence[str] = ()) -> list[ServerProcess]:
    """Start server replicas side by side (``extra`` flags added to each command line) and register
    the clusters as consumers."""
    servers = [rig.server(name, start=False, extra=extra) for name in names]
    await asyncio.gather(*(asyncio.to_thread(s.start) for s in servers))
    async with MaestroClient(
        servers[0].address, source="failures-setup", credentials=rig.credentials()
    ) as setup:
        for cluster in rig.clusters:
            consumer = await setup.create_consumer(cluster.name)
            assert consumer.slot is not None
            rig.slots[cluster.name] = consumer.slot
    return servers


# -- the source's load ---------------------------------------------------------------------------


class Load:
    """Creates every work through the source API, retrying as a source does, ``concurrency`` at once.

    Work ``i`` goes first to address ``i % len(addresses)``; a call that fails with a retried code
    goes to the next address after a short pause. Any other error fails the load. With
    ``hold_after``, works from that index on wait for ``release()`` (to send them at a chosen moment).
    """

    def __init__(
        self,
        rig: Rig,
        addresses: Sequence[str],
        works: Sequence[Work],
        *,
        concurrency: int = 16,
        call_timeout: float = 15,
        give_up_after: float = 150,
        hold_after: int | None = None,
    ) -> None:
        self._rig = rig
        self._clients = [
            MaestroClient(a, source="failures-source", credentials=rig.credentials()) for a in addresses
        ]
        self._works = list(works)
        self.calls = Calls(concurrency)
        self._call_timeout = call_timeout
        self._give_up_after = give_up_after
        self._hold_after = len(self._works) if hold_after is None else hold_after
        self._released = asyncio.Event()

    @property
    def acknowledged(self) -> int:
        return self.calls.acknowledged

    @property
    def retries(self) -> Counter[str]:
        return self.calls.retries

    def release(self) -> None:
        """Let the held works go."""
        self._released.set()

    async def run(self) -> None:
        async def send(index: int, work: Work) -> None:
            if index >= self._hold_after:
                await self._released.wait()
            await self._create(index, work)

        try:
            await self.calls.send_all(self._works, send)
            self._rig.note(f"load: {self.acknowledged} creates accepted, retries {dict(self.retries)}")
        finally:
            for c in self._clients:
                await c.close()

    async def _create(self, index: int, work: Work) -> None:
        await self.calls.until_accepted(
            f"create of {work.name} ({work.id})",
            self._clients,
            index,
            lambda source: self._send(source, index, work),
            call_timeout=self._call_timeout,
            give_up_after=self._give_up_after,
            retried=lambda exc: exc.code in RETRIED_CODES,
            context=lambda: f"\n{self._rig.tails()}",
        )

    async def _send(self, source: MaestroClient, index: int, work: Work) -> None:
        """The call of work ``index`` (a create; a load of other calls says otherwise)."""
        await source.apply(work.cluster, work.id, self._rig.bundle(work))

    async def until_acknowledged(self, count: int, timeout: float = 120) -> None:
        """Wait until ``count`` creates were accepted (the trigger of a kill in the middle)."""
        await self.calls.until(
            f"{count} creates accepted", lambda: self.acknowledged >= count, timeout, f"\n{self._rig.tails()}"
        )

    @property
    def retried(self) -> int:
        return sum(self.retries.values())


def running(load: Load) -> contextlib.AbstractAsyncContextManager[asyncio.Task[None]]:
    """Run ``load`` in the background; on leaving, wait for it to finish (its errors propagate)."""
    return in_background(load.run, "load")


async def eventually(
    check: Callable[[], Any], *, timeout: float, what: str, rig: Rig, period: float = 0.5
) -> Any:
    """Poll ``check`` (sync, run in a thread; returns (done, seen)) until done; fail saying what was seen."""
    deadline = time.monotonic() + timeout
    while True:
        done, seen = await asyncio.to_thread(check)
        if done:
            return seen
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f}s; last seen: {seen}\n{rig.tails()}", pytrace=False)
        await asyncio.sleep(period)


async def wait_for_config_maps(rig: Rig, cluster: kube.Cluster, at_least: int, timeout: float = 120) -> int:
    """Wait until ``cluster`` holds ``at_least`` of the test's ConfigMaps; return how many it holds."""

    def check() -> tuple[bool, int]:
        count = len(rig.config_maps(cluster))
        return count >= at_least, count

    seen: int = await eventually(
        check, timeout=timeout, what=f"{cluster.name} to hold {at_least} ConfigMaps", rig=rig, period=0.2
    )
    return seen


# -- exactly once ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What the test's bundles end as: every one of ``works`` applied at its version (1 unless
    ``versions`` says otherwise), and every one of ``gone`` deleted, from its cluster and Maestro."""

    works: Sequence[Work]
    versions: Mapping[uuid.UUID, int] = dataclasses.field(default_factory=dict)
    gone: Sequence[Work] = ()

    def version(self, work: Work) -> int:
        return self.versions.get(work.id, 1)

    @property
    def ids(self) -> set[str]:
        """Every bundle of the test, present or gone, as the applied records name them."""
        return {str(w.id) for w in (*self.works, *self.gone)}


@dataclasses.dataclass
class Observed:
    """What a user can see of the test's bundles, per cluster."""

    config_maps: dict[str, dict[str, str]]  # cluster -> ConfigMap name -> uid
    records: dict[str, list[dict[str, Any]]]  # cluster -> the test's applied records
    statuses: dict[uuid.UUID, bundles.BundleRecord]  # every bundle of the test, from the query API

    def applied(self, outcome: Outcome, cluster: str) -> int:
        """The cluster's applied records at their bundle's wanted version."""
        wanted = {str(w.id): outcome.version(w) for w in outcome.works if w.cluster == cluster}
        return sum(
            1
            for r in self.records[cluster]
            if wanted.get(r["spec"]["resourceId"]) == r["spec"].get("version")
        )

    def summary(self, rig: Rig, outcome: Outcome) -> str:
        wanted = Counter(w.cluster for w in outcome.works)
        gone = Counter(w.cluster for w in outcome.gone)
        done = Counter(
            w.cluster
            for w in outcome.works
            if (r := self.statuses.get(w.id)) is not None
            and r.status is not None
            and r.status_version == outcome.version(w)
        )
        left = Counter(w.cluster for w in outcome.gone if w.id in self.statuses)
        return "; ".join(
            f"{c.name}: {len(self.config_maps[c.name])}/{wanted[c.name]} ConfigMaps, "
            f"{self.applied(outcome, c.name)}/{wanted[c.name]} records at their version, "
            f"{done[c.name]}/{wanted[c.name]} statuses of their version stored, "
            f"{left[c.name]}/{gone[c.name]} deleted bundles still in Maestro"
            for c in rig.clusters
        )


async def observe(rig: Rig, address: str, outcome: Outcome) -> Observed:
    ours = outcome.ids

    def in_clusters() -> tuple[dict[str, dict[str, str]], dict[str, list[dict[str, Any]]]]:
        cms = {c.name: rig.config_maps(c) for c in rig.clusters}
        recs = {
            c.name: [r for r in rig.applied_records(c) if r["spec"]["resourceId"] in ours]
            for c in rig.clusters
        }
        return cms, recs

    cms, recs = await asyncio.to_thread(in_clusters)
    async with MaestroClient(address, source="failures-observer", credentials=rig.credentials()) as source:
        listed, _ = await asyncio.wait_for(source.list(queries.ResourceFilter(source="failures-source")), 30)
    return Observed(cms, recs, {r.bundle.id: r for r in listed})


def _converged(seen: Observed, outcome: Outcome) -> bool:
    wanted = Counter(w.cluster for w in outcome.works)
    gone_names = {(w.cluster, w.name) for w in outcome.gone}
    return (
        all(len(seen.config_maps[c]) >= n and seen.applied(outcome, c) >= n for c, n in wanted.items())
        and all(
            (r := seen.statuses.get(w.id)) is not None
            and r.status is not None
            and r.status_version >= outcome.version(w)
            for w in outcome.works
        )
        and not any(w.id in seen.statuses for w in outcome.gone)
        and not any((c, name) in gone_names for c, cms in seen.config_maps.items() for name in cms)
    )


async def wait_exactly_once(
    rig: Rig,
    address: str,
    works: Sequence[Work] | Outcome,
    timeout: float = 180,
) -> Observed:
    """Wait until every work is applied at its version and its status stored (and every deleted
    one gone), then check it happened exactly once.

    ``address`` is a live server's (for the query API); ``works`` all at version 1, or an
    `Outcome`. Fails with what was expected and what was seen: per cluster the ConfigMaps, applied
    records and stored statuses, and the process logs.
    """
    outcome = works if isinstance(works, Outcome) else Outcome(works)
    deadline = time.monotonic() + timeout
    next_note = time.monotonic() + 10
    while True:
        seen = await observe(rig, address, outcome)
        if time.monotonic() >= next_note:
            rig.note(f"waiting: {seen.summary(rig, outcome)}")
            next_note += 10
        if _converged(seen, outcome):
            rig.note(f"converged: {seen.summary(rig, outcome)}")
            break
        if time.monotonic() > deadline:
            pytest.fail(
                f"expected {len(outcome.works)} bundles applied with their status stored and "
                f"{len(outcome.gone)} gone within {timeout:.0f}s; seen: {seen.summary(rig, outcome)}\n"
                f"{rig.tails()}",
                pytrace=False,
            )
        await asyncio.sleep(1)
    check_exactly_once(rig, outcome, seen)
    await check_status_topic(rig, outcome, seen)
    return seen


def check_exactly_once(rig: Rig, outcome: Outcome, seen: Observed) -> None:
    by_cluster: dict[str, list[Work]] = defaultdict(list)
    for w in outcome.works:
        by_cluster[w.cluster].append(w)
    for cluster in rig.clusters:
        mine = by_cluster[cluster.name]
        # Exact object counts: every ConfigMap, in its own cluster only, none extra (a deleted
        # work's among them).
        expected_names = {w.name for w in mine}
        actual = seen.config_maps[cluster.name]
        missing, extra = sorted(expected_names - actual.keys()), sorted(actual.keys() - expected_names)
        assert not missing and not extra, (
            f"{cluster.name}: expected exactly {len(expected_names)} ConfigMaps; "
            f"missing {missing[:5]} ({len(missing)}), unexpected {extra[:5]} ({len(extra)})"
        )
        # One applied record per (resource, version), and the object it owns is the live one: it
        # was created once and never deleted and created again.
        keyed = Counter(
            (r["spec"]["resourceId"], r["spec"].get("version")) for r in seen.records[cluster.name]
        )
        doubled = [k for k, n in keyed.items() if n > 1]
        assert not doubled, f"{cluster.name}: more than one applied record for {doubled[:5]}"
        got = {r["spec"]["resourceId"]: r for r in seen.records[cluster.name]}
        expected_ids = {str(w.id) for w in mine}
        assert got.keys() == expected_ids, (
            f"{cluster.name}: expected applied records for exactly its {len(expected_ids)} bundles; "
            f"missing {len(expected_ids - got.keys())}, foreign or deleted {len(got.keys() - expected_ids)}"
        )
        for w in mine:
            record = got[str(w.id)]
            held, version = record["spec"]["version"], outcome.version(w)
            assert held == version, (
                f"{cluster.name}: the record of {w.name} holds version {held}, expected {version}"
            )
            owned = [
                r
                for r in (record.get("status") or {}).get("appliedResources") or []
                if r.get("resource") == "configmaps"
            ]
            assert [(r["name"], r["uid"]) for r in owned] == [(w.name, actual[w.name])], (
                f"{cluster.name}: the record of {w.name} owns {owned}, expected the live ConfigMap "
                f"(uid {actual[w.name]}) once"
            )
    # Every bundle's status is the applied version's, with its conditions, in the query API; a
    # deleted one is no longer there.
    for w in outcome.works:
        stored = seen.statuses.get(w.id)
        assert stored is not None, f"bundle {w.name} ({w.id}) is missing from the query API"
        version = stored.bundle.version
        assert version == outcome.version(w), (
            f"bundle {w.name} is at version {version}, expected {outcome.version(w)}"
        )
        assert stored.status is not None and stored.status_version == version, (
            f"bundle {w.name}: status of version {stored.status_version} stored, expected {version}"
        )
        conditions = {c.get("type"): c.get("status") for c in stored.status.conditions}
        assert conditions.get("Applied") == "True", f"bundle {w.name}: conditions {conditions}"
    left = [w.name for w in outcome.gone if w.id in seen.statuses]
    assert not left, f"deleted bundles still in the query API: {left[:5]} ({len(left)})"
    # No status sequence id stored twice: one agent's ids are all distinct.
    sequences = Counter(r.status.sequence_id for r in seen.statuses.values() if r.status is not None)
    assert 0 not in sequences, "a stored status has no sequence id"
    duplicated = {s: n for s, n in sequences.items() if n > 1}
    assert not duplicated, f"status sequence ids stored more than once: {duplicated}"


async def check_status_topic(rig: Rig, outcome: Outcome, seen: Observed) -> None:
    """No status sequence id sent twice, each bundle's ids increasing, the stored one among them."""
    ours = {w.id for w in (*outcome.works, *outcome.gone)}
    topics = [rig.topics.status_topic(slot) for slot in rig.slots.values()]
    reports = [r for r in await asyncio.to_thread(status_reports, rig.kafka, topics) if r.resource_id in ours]
    sent = Counter(r.status.sequence_id for r in reports)
    duplicated = {s: n for s, n in sent.items() if n > 1}
    assert not duplicated, f"status sequence ids sent more than once on {topics}: {duplicated}"
    per_resource: dict[uuid.UUID, list[int]] = defaultdict(list)
    for r in reports:
        per_resource[r.resource_id].append(r.status.sequence_id)
    for rid, sequence in per_resource.items():
        assert sequence == sorted(sequence), f"bundle {rid}: status sequence ids out of order: {sequence}"
    for w in outcome.works:
        stored = seen.statuses[w.id].status
        assert stored is not None
        assert stored.sequence_id in per_resource[w.id], (
            f"bundle {w.name}: stored status sequence {stored.sequence_id} was never sent "
            f"(sent: {per_resource[w.id]})"
        )
