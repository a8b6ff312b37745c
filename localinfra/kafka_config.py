"""What a local Kafka node runs with: its ``server.properties`` and logging, for one broker or a
cluster of them (each node a broker and a controller in one JVM, KRaft combined mode).

Secure by default: every listener (clients', inter-broker, controller) is TLS, a client must present
a certificate of the environment's CA (``ssl.client.auth=required``), the certificate's subject is
mapped to a principal by ``trust.identity.KAFKA_PRINCIPAL_RULES``, and the StandardAuthorizer denies
whatever no ACL allows, on every node alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from trust.identity import KAFKA_PRINCIPAL_RULES, Identity, PrincipalForm

LOG4J2 = """status = warn
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
class Node:
    """One node of a local Kafka: broker and controller, its ports and its log directory."""

    node_id: int
    port: int
    controller_port: int
    data: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def voter(self) -> str:
        return f"{self.node_id}@127.0.0.1:{self.controller_port}"


@dataclass(frozen=True)
class Replication:
    """How many copies Kafka keeps of what it holds: 1 on one broker; on three, 3 copies of which
    2 must hold a message before it is acknowledged, so one broker may be lost without losing or
    refusing a write."""

    factor: int
    min_insync: int

    @classmethod
    def for_brokers(cls, brokers: int) -> Replication:
        factor = min(3, brokers)
        return cls(factor, max(1, factor - 1))


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


def _security(
    keystore: Path, truststore: Path, super_users: Sequence[Identity], principals: PrincipalForm
) -> list[str]:
    """TLS on every listener with client certificates required, principals from the certificates'
    subjects (mapped by the rules, or whole where ``principals`` says the brokers cannot map, as
    Amazon MSK's cannot), and nothing allowed that no ACL allows (but to the super users)."""
    mapping = (
        [f"ssl.principal.mapping.rules={KAFKA_PRINCIPAL_RULES}"] if principals is PrincipalForm.MAPPED else []
    )
    return [
        "ssl.client.auth=required",
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={keystore}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={truststore}",
        "ssl.endpoint.identification.algorithm=https",
        *mapping,
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found=false",
        # Kafka splits super.users at ';' only: a subject's commas stay in it
        "super.users=" + ";".join(who.kafka_principal_as(principals) for who in super_users),
    ]


def _quorum(node: Node, nodes: Sequence[Node]) -> list[str]:
    """One node is its own quorum (formatted ``--standalone``); a cluster's voters are fixed."""
    if len(nodes) == 1:
        return [f"controller.quorum.bootstrap.servers=127.0.0.1:{node.controller_port}"]
    return ["controller.quorum.voters=" + ",".join(n.voter for n in nodes)]


def _replication(replication: Replication) -> list[str]:
    factor, isr = replication.factor, replication.min_insync
    return [
        f"default.replication.factor={factor}",
        f"min.insync.replicas={isr}",
        f"offsets.topic.replication.factor={factor}",
        f"transaction.state.log.replication.factor={factor}",
        f"transaction.state.log.min.isr={isr}",
        f"share.coordinator.state.topic.replication.factor={factor}",
        f"share.coordinator.state.topic.min.isr={isr}",
        # A replica that lost data (its broker killed before it flushed) never becomes leader.
        "unclean.leader.election.enable=false",
    ]


def server_properties(
    node: Node,
    nodes: Sequence[Node],
    max_message_bytes: int,
    tls: tuple[Path, Path] | None = None,
    super_users: Sequence[Identity] = (),
    principals: PrincipalForm = PrincipalForm.MAPPED,
    relayed: Relayed | None = None,
) -> str:
    """``node``'s configuration among ``nodes`` (itself alone: a single broker); ``tls`` is its
    (PEM key store, trust store), None for a plaintext broker."""
    return "\n".join(
        [
            "process.roles=broker,controller",
            f"node.id={node.node_id}",
            *_quorum(node, nodes),
            *_listeners(node.port, node.controller_port, secure=tls is not None, relayed=relayed),
            *(_security(*tls, super_users, principals) if tls is not None else []),
            f"log.dirs={node.data}",
            "num.partitions=1",
            "offsets.topic.num.partitions=8",
            *_replication(Replication.for_brokers(len(nodes))),
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
