"""A local Kafka node's configuration: one broker is its own quorum with one copy of everything; in
a cluster of three every node knows the same voters, and topics keep three copies, two in sync."""

from __future__ import annotations

from pathlib import Path

from localinfra.kafka_config import Node, server_properties
from trust.identity import Identity


def properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_a_single_broker_is_its_own_quorum(tmp_path: Path) -> None:
    node = Node(1, 9092, 9093, tmp_path)
    props = properties(server_properties(node, [node], 1024))
    assert props["node.id"] == "1"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:9093"
    assert "controller.quorum.voters" not in props
    assert props["default.replication.factor"] == props["offsets.topic.replication.factor"] == "1"
    assert props["min.insync.replicas"] == "1"


def test_three_nodes_share_their_voters_and_keep_two_copies_in_sync(tmp_path: Path) -> None:
    nodes = [Node(i, 9000 + i, 9100 + i, tmp_path / str(i)) for i in (1, 2, 3)]
    keystore, truststore = tmp_path / "k.pem", tmp_path / "ca.pem"
    broker = Identity.service("kafka")
    every = [properties(server_properties(n, nodes, 1024, (keystore, truststore), [broker])) for n in nodes]
    voters = "1@127.0.0.1:9101,2@127.0.0.1:9102,3@127.0.0.1:9103"
    for node, props in zip(nodes, every, strict=True):
        assert props["node.id"] == str(node.node_id)
        assert props["controller.quorum.voters"] == voters
        assert (
            props["listeners"] == f"SSL://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}"
        )
        assert props["log.dirs"] == str(node.data)
        # The same security on every node: client certificates required, ACLs enforced.
        assert props["ssl.client.auth"] == "required"
        assert props["allow.everyone.if.no.acl.found"] == "false"
        assert props["super.users"] == broker.kafka_principal
        assert props["default.replication.factor"] == props["offsets.topic.replication.factor"] == "3"
        assert props["min.insync.replicas"] == props["transaction.state.log.min.isr"] == "2"
        assert props["unclean.leader.election.enable"] == "false"
