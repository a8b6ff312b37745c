"""Apache Kafka in KRaft combined mode (broker and controller in one JVM), from Maven Central jars.

Secure by default: every listener (clients', inter-broker, controller) is TLS, a client must present
a certificate of the environment's CA (``ssl.client.auth=required``), the certificate's subject is
mapped to a principal by ``trust.identity.KAFKA_PRINCIPAL_RULES``, and the StandardAuthorizer denies
whatever no ACL allows. Only the broker itself and the Maestro server are super users: every other
principal (a cluster's agent, a benchmark's simulated agents) gets the ACLs the server grants it.
``secure=False`` starts the plaintext broker of old (benchmarks compare the two).

Ready means a produce/consume round trip went through, not merely an open port.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from localinfra import build, pki, ports, process
from localinfra.environment import Environment
from localinfra.errors import InfraError
from trust import files
from trust.identity import KAFKA_PRINCIPAL_RULES, Identity

#: The broker's own identity: its serving certificate, and the principal of its inter-broker and
#: controller connections (a super user, or the broker could not talk to itself).
BROKER = Identity.service("kafka")
#: The only client with broad rights: it creates every cluster's topics and grants their ACLs.
MAESTRO_SERVER = Identity.service("maestro-server")
SUPER_USERS = (BROKER, MAESTRO_SERVER)
_HOSTS = ("127.0.0.1", "localhost")

_LOG4J2 = """status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.out.ref = out
logger.kafka.name = kafka
logger.kafka.level = warn
logger.state.name = state.change.logger
logger.state.level = warn
"""


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


@dataclass(frozen=True)
class Relayed:
    """A second client listener, bound at ``port`` and advertised at ``relay_port``, where a relay
    forwarding to ``port`` listens: Kafka hands a client the advertised addresses of the listener
    it bootstrapped on, so a client that bootstraps at the relay reaches the broker only through
    it (a network cut between one client and the broker is then the relay stopping)."""

    port: int
    relay_port: int


def _listeners(port: int, controller_port: int, *, secure: bool, relayed: Relayed | None = None) -> list[str]:
    client = "SSL" if secure else "PLAINTEXT"
    bound = [f"{client}://127.0.0.1:{port}", f"CONTROLLER://127.0.0.1:{controller_port}"]
    advertised = list(bound)
    protocols = [f"CONTROLLER:{client}", f"{client}:{client}"]
    if relayed is not None:
        bound.append(f"RELAYED://127.0.0.1:{relayed.port}")
        advertised.append(f"RELAYED://127.0.0.1:{relayed.relay_port}")
        protocols.append(f"RELAYED:{client}")
    return [
        f"listeners={','.join(bound)}",
        f"advertised.listeners={','.join(advertised)}",
        "controller.listener.names=CONTROLLER",
        f"inter.broker.listener.name={client}",
        f"listener.security.protocol.map={','.join(protocols)}",
    ]


def _security(keystore: Path, truststore: Path) -> list[str]:
    """TLS on every listener with client certificates required, principals from the certificates'
    subjects, and nothing allowed that no ACL allows (but to the super users)."""
    return [
        "ssl.client.auth=required",
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={keystore}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={truststore}",
        "ssl.endpoint.identification.algorithm=https",
        f"ssl.principal.mapping.rules={KAFKA_PRINCIPAL_RULES}",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found=false",
        "super.users=" + ";".join(who.kafka_principal for who in SUPER_USERS),
    ]


def _server_properties(
    node_dir: str,
    port: int,
    controller_port: int,
    max_message_bytes: int,
    tls: tuple[Path, Path] | None = None,
    relayed: Relayed | None = None,
) -> str:
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}",
            *_listeners(port, controller_port, secure=tls is not None, relayed=relayed),
            *(_security(*tls) if tls is not None else []),
            f"log.dirs={node_dir}",
            "num.partitions=1",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=8",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
            f"message.max.bytes={max_message_bytes}",
            f"replica.fetch.max.bytes={max_message_bytes}",
            # Thousands of per-cluster partitions on one small broker: keep each one's footprint small.
            "log.segment.bytes=16777216",
            "log.index.size.max.bytes=1048576",
            "num.io.threads=4",
            "num.network.threads=2",
            "",
        ]
    )


def round_trip(broker: Kafka, timeout: float = 10.0) -> bool:
    """Produce one message to a probe topic and read it back (as the broker's own identity)."""
    topic = "__fleetplane_probe"
    config = broker.client_config()
    admin = AdminClient(config)
    futures = admin.create_topics([NewTopic(topic, 1, 1)], operation_timeout=timeout)
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


def start(
    env: Environment,
    name: str = "kafka",
    *,
    heap: str = "768m",
    max_message_bytes: int = 2 * 1024 * 1024,
    secure: bool = True,
    pki_env: Environment | None = None,
    relay_port: int | None = None,
) -> Kafka:
    """Start a broker. Its certificate comes from ``pki_env``'s CA (default ``env``'s): the CA every
    client of the broker must hold a certificate of. With ``relay_port``, the broker also serves
    clients through a relay listening there (`Relayed`); the endpoint records the relay's address
    (``relayed_bootstrap``) and the listener it forwards to (``relayed_upstream``)."""
    java = shutil.which("java")
    if not java:
        raise InfraError("java is not installed", fix="apt-get install -y openjdk-17-jre-headless")
    lib = build.kafka_lib_dir()
    if not lib.exists():
        raise InfraError("Kafka jars are missing", fix="run `fleetplane local build`")
    folder = env.path(name)
    data = env.path(name, "data")
    port, controller_port = ports.free_port(), ports.free_port()
    tls: files.TLSFiles | None = None
    stores: tuple[Path, Path] | None = None
    if secure:
        tls, keystore = _broker_identity(folder, pki_env or env)
        stores = (keystore, tls.ca)
    config = folder / "server.properties"
    relayed = Relayed(ports.free_port(), relay_port) if relay_port is not None else None
    config.write_text(
        _server_properties(str(data), port, controller_port, max_message_bytes, stores, relayed)
    )
    log4j = folder / "log4j2.properties"
    log4j.write_text(_LOG4J2)
    classpath = f"{lib}/*"
    jvm = [
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
        classpath,
    ]
    cluster_id = new_cluster_id()
    fmt_args = ["kafka.tools.StorageTool", "format", "--standalone", "-t", cluster_id, "-c", str(config)]
    fmt = subprocess.run(
        [*jvm, *fmt_args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if fmt.returncode != 0:
        raise InfraError(
            "kafka storage format failed", fix=f"check {config}", log_tail=(fmt.stdout + fmt.stderr)[-2000:]
        )
    record = env.add_process(process.spawn(name, [*jvm, "kafka.Kafka", str(config)], folder / "kafka.log"))
    broker = Kafka(f"127.0.0.1:{port}", tls)
    process.wait_until(
        record,
        lambda: ports.is_listening(port) and round_trip(broker),
        timeout=120,
        what="taking a produce/consume round trip",
    )
    relay = (
        {
            "relayed_bootstrap": f"127.0.0.1:{relayed.relay_port}",
            "relayed_upstream": f"127.0.0.1:{relayed.port}",
        }
        if relayed is not None
        else {}
    )
    env.set_endpoint(
        name, bootstrap=broker.bootstrap, tls_dir=str(tls.ca.parent) if tls is not None else "", **relay
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
