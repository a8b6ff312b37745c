"""Apache Kafka in KRaft combined mode (each node a broker and a controller in one JVM), from Maven
Central jars: one broker (the default: what the demo and most tests need), or a cluster of three
(``brokers=3``) whose topics keep three replicas, two of them in sync, so that one broker may be
killed without losing or refusing a write (`localinfra.kafka_cluster` kills and restarts them).

Secure by default (`localinfra.kafka_config`): TLS with client certificates on every listener and
ACLs. Only the brokers themselves and the Maestro server are super users: every other principal (a
cluster's agent, a benchmark's simulated agents) gets the ACLs the server grants it.
``secure=False`` starts the plaintext broker of old (benchmarks compare the two).

Ready means a produce/consume round trip went through, not merely an open port.
"""

from __future__ import annotations

import base64
import functools
import shutil
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from localinfra import build, pki, ports, process
from localinfra.environment import Environment
from localinfra.errors import InfraError
from localinfra.kafka_config import LOG4J2, Node, Relayed, server_properties
from trust import files
from trust.identity import Identity, PrincipalForm

#: The broker's own identity: its serving certificate, and the principal of its inter-broker and
#: controller connections (a super user, or the broker could not talk to itself).
BROKER = Identity.service("kafka")
#: The only client with broad rights: it creates every cluster's topics and grants their ACLs.
MAESTRO_SERVER = Identity.service("maestro-server")
SUPER_USERS = (BROKER, MAESTRO_SERVER)
_HOSTS = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class Kafka:
    bootstrap: str
    #: The broker's own identity files (a super user), which local tools and the readiness probe
    #: connect with; None for a plaintext broker.
    tls: files.TLSFiles | None = None

    @property
    def secure(self) -> bool:
        return self.tls is not None

    @classmethod
    def from_env(cls, env: Environment, name: str = "kafka") -> Kafka:
        endpoint = env.endpoint(name)
        folder = endpoint.get("tls_dir")
        return cls(endpoint["bootstrap"], tls_dir_files(Path(folder)) if folder else None)

    def client_config(self) -> dict[str, str | int | float | bool]:
        """librdkafka settings of a client connecting as the broker's own identity."""
        return client_config(self.bootstrap, self.tls)


def tls_dir_files(folder: Path) -> files.TLSFiles:
    """The files of a TLS folder as ``identity_files`` writes them (a Kubernetes TLS Secret's names)."""
    return files.TLSFiles(ca=folder / "ca.crt", cert=folder / "tls.crt", key=folder / "tls.key")


def client_config(bootstrap: str, tls: files.TLSFiles | None) -> dict[str, str | int | float | bool]:
    """librdkafka settings for ``bootstrap``: TLS with ``tls``'s certificate, or plaintext if None."""
    config: dict[str, str | int | float | bool] = {"bootstrap.servers": bootstrap}
    if tls is not None:
        assert tls.cert is not None and tls.key is not None, "the broker requires a client certificate"
        config |= {
            "security.protocol": "SSL",
            "ssl.ca.location": str(tls.ca),
            "ssl.certificate.location": str(tls.cert),
            "ssl.key.location": str(tls.key),
            "ssl.endpoint.identification.algorithm": "https",
        }
    return config


def round_trip(broker: Kafka, timeout: float = 10.0) -> bool:
    """Produce one message to a probe topic and read it back (as the broker's own identity)."""
    topic = "__fleetplane_probe"
    config = broker.client_config()
    admin = AdminClient(config)
    # -1: the brokers' default replication (all three of a cluster must answer for it to be made)
    futures = admin.create_topics([NewTopic(topic, 1, -1)], operation_timeout=timeout)
    for fut in futures.values():
        try:
            fut.result(timeout)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    token = uuid.uuid4().hex.encode()
    producer = Producer(config)
    producer.produce(topic, token)
    if producer.flush(timeout) != 0:
        return False
    consumer = Consumer(
        {
            **config,
            "group.id": f"probe-{token.decode()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error() and msg.value() == token:
                return True
        return False
    finally:
        consumer.close()


def new_cluster_id() -> str:
    """A KRaft cluster id: a random UUID in URL-safe base64, as Kafka's own tool makes them.

    One in 64 such ids starts with "-", which the storage tool's argument parser reads as an
    option and refuses; Kafka's Uuid.randomUuid skips those too.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _broker_identity(folder: Path, pki_env: Environment) -> tuple[files.TLSFiles, Path]:
    """The broker's certificate (serving 127.0.0.1 and localhost, and its own client one), and the
    PEM key store Kafka reads: key and chain in one file, readable by its owner alone."""
    tls = pki.identity_files(pki_env, BROKER, hosts=_HOSTS, server=True)
    assert tls.cert is not None and tls.key is not None
    keystore = files.write_private(folder / "broker.pem", tls.key.read_bytes() + tls.cert.read_bytes())
    return tls, keystore


def node_name(name: str, node_id: int, brokers: int) -> str:
    """The process (and folder) name of a node: ``name`` for a single broker, ``name-<id>`` else."""
    return name if brokers == 1 else f"{name}-{node_id}"


def _jvm(java: str, heap: str, log4j: Path) -> list[str]:
    return [
        java,
        f"-Xmx{heap}",
        f"-Xms{heap}",
        # Throughput, not pause times, is what a broker on two cores is short of: the parallel
        # collector has neither G1's concurrent refinement threads nor its costlier write barrier.
        "-XX:+UseParallelGC",
        "-XX:ParallelGCThreads=2",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log4j}",
        "-cp",
        f"{build.kafka_lib_dir()}/*",
    ]


def _format(jvms: Sequence[tuple[list[str], Path]], standalone: bool) -> None:
    """Format every node's log directory for one new cluster id (the nodes side by side)."""
    cluster_id = new_cluster_id()
    mode = ["--standalone"] if standalone else []
    running = [
        (
            config,
            subprocess.Popen(
                [*jvm, "kafka.tools.StorageTool", "format", *mode, "-t", cluster_id, "-c", str(config)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            ),
        )
        for jvm, config in jvms
    ]
    for config, proc in running:
        out, _ = proc.communicate(timeout=180)
        if proc.returncode != 0:
            raise InfraError("kafka storage format failed", fix=f"check {config}", log_tail=out[-2000:])


def start(
    env: Environment,
    name: str = "kafka",
    *,
    brokers: int = 1,
    heap: str | None = None,
    max_message_bytes: int = 2 * 1024 * 1024,
    secure: bool = True,
    pki_env: Environment | None = None,
    principals: PrincipalForm = PrincipalForm.MAPPED,
    relay_ports: Sequence[int] = (),
) -> Kafka:
    """Start ``brokers`` nodes (1, or 3 for a cluster that survives the loss of one) and wait until
    they take a round trip. Their certificate comes from ``pki_env``'s CA (default ``env``'s): the
    CA every client must hold a certificate of. ``heap`` is each JVM's (default 768m for one
    broker, 512m each in a cluster). ``principals``: how the brokers name clients (subject: no
    mapping rules, as on Amazon MSK). With ``relay_ports`` (one per broker), each broker also serves
    clients through a relay listening at its port (`Relayed`); the endpoint records the relays'
    addresses (``relayed_bootstrap``, comma-separated) and, in broker order, the listener each
    forwards to (``relayed_upstreams``)."""
    if brokers not in (1, 3):
        raise InfraError(f"a local Kafka has 1 or 3 brokers, not {brokers}", fix="ask for 1 or 3")
    if relay_ports and len(relay_ports) != brokers:
        raise InfraError(
            f"{len(relay_ports)} relay ports for {brokers} brokers", fix="give one relay port per broker"
        )
    java = shutil.which("java")
    if not java:
        raise InfraError("java is not installed", fix="apt-get install -y openjdk-17-jre-headless")
    if not build.kafka_lib_dir().exists():
        raise InfraError("Kafka jars are missing", fix="run `fleetplane local build`")
    folder = env.path(name)
    nodes = [
        Node(i, ports.free_port(), ports.free_port(), env.path(node_name(name, i, brokers), "data"))
        for i in range(1, brokers + 1)
    ]
    tls: files.TLSFiles | None = None
    stores: tuple[Path, Path] | None = None
    if secure:
        tls, keystore = _broker_identity(folder, pki_env or env)
        stores = (keystore, tls.ca)
    log4j = folder / "log4j2.properties"
    log4j.write_text(LOG4J2)
    jvm = _jvm(java, heap or ("768m" if brokers == 1 else "512m"), log4j)
    relayed: list[Relayed | None] = [Relayed(ports.free_port(), port) for port in relay_ports]
    relayed = relayed or [None] * brokers
    configs = []
    for node, its_relay in zip(nodes, relayed, strict=True):
        config = env.path(node_name(name, node.node_id, brokers)) / "server.properties"
        config.write_text(
            server_properties(node, nodes, max_message_bytes, stores, SUPER_USERS, principals, its_relay)
        )
        configs.append((jvm, config))
    _format(configs, standalone=brokers == 1)
    records = []
    for node, (_, config) in zip(nodes, configs, strict=True):
        process_name = node_name(name, node.node_id, brokers)
        log = config.parent / "kafka.log"
        records.append(env.add_process(process.spawn(process_name, [*jvm, "kafka.Kafka", str(config)], log)))
    broker = Kafka(",".join(n.address for n in nodes), tls)
    # A node of a cluster serves clients only once a majority of the controllers has formed a
    # quorum, which three JVMs starting together on two busy cores take minutes to do.
    deadline = time.monotonic() + (120 if brokers == 1 else 360)
    for node, record in zip(nodes, records, strict=True):
        process.wait_until(
            record,
            functools.partial(ports.is_listening, node.port),
            timeout=deadline - time.monotonic(),
            what="listening",
        )
    process.wait_until(
        records[0],
        lambda: round_trip(broker),
        timeout=max(60.0, deadline - time.monotonic()),
        what="taking a produce/consume round trip",
    )
    relay = (
        {
            "relayed_bootstrap": ",".join(f"127.0.0.1:{r.relay_port}" for r in relayed if r),
            "relayed_upstreams": [f"127.0.0.1:{r.port}" for r in relayed if r],
        }
        if relay_ports
        else {}
    )
    env.set_endpoint(
        name,
        bootstrap=broker.bootstrap,
        tls_dir=str(tls.ca.parent) if tls is not None else "",
        nodes=[node_name(name, n.node_id, brokers) for n in nodes],
        **relay,
    )
    return broker


def restart(env: Environment, name: str = "kafka", *, timeout: float = 120) -> Kafka:
    """Start a broker ``start`` made again, as a restarted broker: same ports, config and data.

    The recorded command line is run as it was (no ``format``), so topics, ACLs, committed offsets
    and consumer groups survive and clients reconnect to the same bootstrap address. A broker that
    is still running is stopped first.
    """
    old = env.processes.get(name)
    if old is None:
        raise InfraError(f"no {name} recorded in {env.root}", fix="start it with kafka.start first")
    if process.is_alive(old):
        process.stop(old)
    broker = Kafka.from_env(env, name)
    port = int(broker.bootstrap.rsplit(":", 1)[1])
    record = env.add_process(process.spawn(name, old.argv, env.path(name) / "kafka.log"))
    process.wait_until(
        record,
        lambda: ports.is_listening(port) and round_trip(broker),
        timeout=timeout,
        what="taking a produce/consume round trip after a restart",
    )
    return broker
