"""Apache Kafka in KRaft combined mode (broker and controller in one JVM), from Maven Central jars.

Ready means a produce/consume round trip went through, not merely an open port.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from localinfra import build, ports, process
from localinfra.environment import Environment
from localinfra.errors import InfraError

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

    @classmethod
    def from_env(cls, env: Environment, name: str = "kafka") -> Kafka:
        return cls(env.endpoint(name)["bootstrap"])


def _server_properties(node_dir: str, port: int, controller_port: int, max_message_bytes: int) -> str:
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
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


def round_trip(bootstrap: str, timeout: float = 10.0) -> bool:
    """Produce one message to a probe topic and read it back."""
    topic = "__fleetplane_probe"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, 1, 1)], operation_timeout=timeout)
    for fut in futures.values():
        try:
            fut.result(timeout)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    token = uuid.uuid4().hex.encode()
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, token)
    if producer.flush(timeout) != 0:
        return False
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
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


def start(
    env: Environment, name: str = "kafka", *, heap: str = "768m", max_message_bytes: int = 2 * 1024 * 1024
) -> Kafka:
    java = shutil.which("java")
    if not java:
        raise InfraError("java is not installed", fix="apt-get install -y openjdk-17-jre-headless")
    lib = build.kafka_lib_dir()
    if not lib.exists():
        raise InfraError("Kafka jars are missing", fix="run `fleetplane local build`")
    folder = env.path(name)
    data = env.path(name, "data")
    port, controller_port = ports.free_port(), ports.free_port()
    config = folder / "server.properties"
    config.write_text(_server_properties(str(data), port, controller_port, max_message_bytes))
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
    bootstrap = f"127.0.0.1:{port}"
    process.wait_until(
        record,
        lambda: ports.is_listening(port) and round_trip(bootstrap),
        timeout=120,
        what="taking a produce/consume round trip",
    )
    env.set_endpoint(name, bootstrap=bootstrap)
    return Kafka(bootstrap)


def restart(env: Environment, name: str = "kafka", *, timeout: float = 120) -> Kafka:
    """Start a broker ``start`` made again, as a restarted broker: same ports, config and data.

    The recorded command line is run as it was (no ``format``), so topics, committed offsets and
    consumer groups survive and clients reconnect to the same bootstrap address. A broker that is
    still running is stopped first.
    """
    old = env.processes.get(name)
    if old is None:
        raise InfraError(f"no {name} recorded in {env.root}", fix="start it with kafka.start first")
    if process.is_alive(old):
        process.stop(old)
    bootstrap = str(env.endpoint(name)["bootstrap"])
    port = int(bootstrap.rsplit(":", 1)[1])
    record = env.add_process(process.spawn(name, old.argv, env.path(name) / "kafka.log"))
    process.wait_until(
        record,
        lambda: ports.is_listening(port) and round_trip(bootstrap),
        timeout=timeout,
        what="taking a produce/consume round trip after a restart",
    )
    return Kafka(bootstrap)
