"""Where events go in Kafka, decided so that an agent reads only its own cluster's events.

- Spec events (server -> agents) go to the spec topic; every consumer (cluster) owns one partition
  of it, allocated when the consumer is registered and recorded with it in PostgreSQL. An agent is
  *assigned* exactly that partition (no consumer-group rebalancing), so the bytes it reads are its
  own events and nothing else. The topic grows in chunks of ``PARTITION_CHUNK`` partitions as
  consumers are added; Kafka never shrinks a topic, so a deleted consumer's partition is retired,
  not reused (a new cluster must never read an old cluster's leftovers).
- Status events (agents -> servers) go to the status topic, keyed by cluster, read by every server
  replica in one consumer group: replicas share the partitions and Kafka rebalances them when a
  replica joins or dies.

Limits: one broker here carries a few thousand partitions comfortably; past that a placement can
name another spec topic (the placement is a (topic, partition) pair for that reason).
"""

from __future__ import annotations

import dataclasses

STATUS_PARTITIONS = 16
PARTITION_CHUNK = 64


@dataclasses.dataclass(frozen=True)
class Layout:
    """Topic and group names under one prefix (tests and benchmarks use their own prefix)."""

    prefix: str = "fleetplane.maestro"

    @property
    def spec_topic(self) -> str:
        return f"{self.prefix}.spec"

    @property
    def status_topic(self) -> str:
        return f"{self.prefix}.status"

    @property
    def server_group(self) -> str:
        return f"{self.prefix}.servers"

    def agent_group(self, cluster: str) -> str:
        """The group an agent commits its offsets under (it is assigned, never rebalanced)."""
        return f"{self.prefix}.agent.{cluster}"


DEFAULT = Layout()


def partitions_for(highest_partition: int) -> int:
    """How many partitions the spec topic needs so that ``highest_partition`` exists, in whole chunks."""
    needed = highest_partition + 1
    return -(-needed // PARTITION_CHUNK) * PARTITION_CHUNK
