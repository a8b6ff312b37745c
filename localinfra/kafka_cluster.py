"""A local Kafka cluster's brokers, one by one: who they are, kill -9 one as a crash would, start it
again on its own ports and data, and tell when every partition is fully replicated again.

``start_cluster`` starts three brokers (`localinfra.kafka.start` with ``brokers=3``) and returns
their `Brokers`; ``Brokers.of(env)`` finds those of a cluster started earlier. Failure tests and
chaos harnesses share it: it knows nothing of what runs on the cluster.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka.admin import AdminClient

from localinfra import kafka, ports, process
from localinfra.environment import Environment
from localinfra.errors import InfraError

DEFAULT_NAME = "kafka-ha"


@dataclass(frozen=True)
class Brokers:
    """The brokers of the local Kafka ``name`` in ``env``; broker ``i`` (0-based) is node ``i + 1``."""

    env: Environment
    name: str

    @classmethod
    def of(cls, env: Environment, name: str = DEFAULT_NAME) -> Brokers:
        if not env.endpoint(name).get("nodes"):
            raise InfraError(f"{name} in {env.root} records no brokers", fix="start it with start_cluster")
        return cls(env, name)

    @property
    def kafka(self) -> kafka.Kafka:
        """How to connect to the cluster (every broker's address, the brokers' own identity)."""
        return kafka.Kafka.from_env(self.env, self.name)

    @property
    def names(self) -> list[str]:
        return list(self.env.endpoint(self.name)["nodes"])

    def __len__(self) -> int:
        return len(self.names)

    def record(self, i: int) -> process.ProcessRecord:
        return self.env.processes[self.names[i]]

    @property
    def pids(self) -> list[int]:
        return [self.record(i).pid for i in range(len(self))]

    def node_id(self, i: int) -> int:
        return i + 1

    def address(self, i: int) -> str:
        return self.kafka.bootstrap.split(",")[i]

    def alive(self, i: int) -> bool:
        return process.is_alive(self.record(i))

    def kill(self, i: int) -> None:
        """kill -9 broker ``i``: no shutdown, no flush, its leaderships lost as in a crash."""
        record = self.record(i)
        if not process.is_alive(record):
            raise InfraError(f"{record.name} is not running: nothing to kill", fix=f"restart({i}) it first")
        process.kill_hard(record)
        if process.is_alive(record):
            raise InfraError(
                f"{record.name} (pid {record.pid}) survived kill -9", fix=f"kill -9 {record.pid}"
            )

    def restart(self, i: int, *, timeout: float = 240) -> None:
        """Start broker ``i`` again with its recorded command line (same ports, config and data, no
        format); return once the cluster lists it among its brokers again. Whether it caught up
        with the others is `wait_in_sync`'s to tell."""
        old = self.record(i)
        if process.is_alive(old):
            raise InfraError(f"{old.name} is still running", fix=f"kill({i}) it first")
        port = int(self.address(i).rsplit(":", 1)[1])
        record = self.env.add_process(
            process.spawn(old.name, old.argv, self.env.path(old.name) / "kafka.log")
        )
        process.wait_until(
            record,
            lambda: (
                ports.is_listening(port) and self.node_id(i) in self._admin.list_topics(timeout=5).brokers
            ),
            timeout=timeout,
            what="back among the cluster's brokers",
        )

    @functools.cached_property
    def _admin(self) -> AdminClient:
        # Quiet below critical: while a broker is down, each look would log its refused connections.
        return AdminClient({**self.kafka.client_config(), "log_level": 2})

    def leader_of(self, topic: str, partition: int = 0) -> int:
        """The broker (0-based) that leads ``topic``'s ``partition``."""
        metadata = self._admin.list_topics(topic, timeout=30).topics[topic]
        if metadata.error is not None:
            raise InfraError(f"cannot describe {topic}: {metadata.error}", fix="check that the topic exists")
        return int(metadata.partitions[partition].leader) - 1

    def under_replicated(self) -> list[str]:
        """Every partition (``topic[partition]``) whose in-sync replicas are fewer than its replicas."""
        topics = self._admin.list_topics(timeout=30).topics
        return sorted(
            f"{name}[{p.id}]"
            for name, meta in topics.items()
            for p in meta.partitions.values()
            if len(p.isrs) < len(p.replicas)
        )

    def wait_in_sync(self, timeout: float = 240) -> None:
        """Wait until every partition of the cluster has all its replicas in sync."""
        deadline = time.monotonic() + timeout
        lagging = self.under_replicated()
        while lagging:
            if time.monotonic() > deadline:
                raise InfraError(
                    f"{len(lagging)} partition(s) not fully replicated within {timeout:.0f}s: {lagging[:5]}",
                    fix="read the brokers' kafka.log",
                )
            time.sleep(0.5)
            lagging = self.under_replicated()


def start_cluster(
    env: Environment,
    name: str = DEFAULT_NAME,
    *,
    heap: str = "384m",
    pki_env: Environment | None = None,
    relay_ports: Sequence[int] = (),
) -> Brokers:
    """Three brokers (each also a controller), TLS and ACLs as a single broker has them; with
    ``relay_ports`` (three), each also serves clients through a relay there (`kafka.start`)."""
    kafka.start(env, name, brokers=3, heap=heap, pki_env=pki_env, relay_ports=relay_ports)
    return Brokers(env, name)
