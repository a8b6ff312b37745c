"""Where events go in Kafka, laid out so that Kafka's own ACLs confine each cluster to its events.

Every consumer (cluster) has a *placement slot*, drawn from a sequence when it is registered and
never handed out again, and two topics of one partition each named after it:

- ``<prefix>.spec.<slot>``: spec events (server -> the cluster's agent), which the agent is
  *assigned* (no consumer-group rebalancing) and reads under its group ``<prefix>.agent.<name>``;
- ``<prefix>.status.<slot>``: status reports and resync requests (the agent -> servers), which every
  server replica reads in one consumer group, subscribed by pattern so a new cluster's topic is
  picked up without a restart.

Both are created with the consumer, together with literal ACLs for the cluster's principal
(``trust.identity.Identity.cluster(name, slot).kafka_principal``): Read on its spec topic, Write on
its status topic, Read on its group (Read and Write imply Describe), nothing else. A cluster can
therefore neither read another's work nor write into another's status topic, whatever its payload
claims; the server binds each status to the consumer owning the topic it came on. A slot is never
reused, so a cluster deleted and registered again under its name gets new topics and a new
principal, which its old certificate does not carry.

Limits: two topics (two partitions) per cluster; a broker's partition count, and a status reader
whose fetch requests name every status partition, are what a fleet's size is measured against.
"""

from __future__ import annotations

import dataclasses
import re


@dataclasses.dataclass(frozen=True)
class Layout:
    """Topic and group names under one prefix (tests and benchmarks use their own prefix)."""

    prefix: str = "fleetplane.maestro"

    @property
    def spec_prefix(self) -> str:
        """What every spec topic's name starts with (a prefixed ACL names it)."""
        return f"{self.prefix}.spec."

    @property
    def status_prefix(self) -> str:
        """What every status topic's name starts with (a prefixed ACL names it)."""
        return f"{self.prefix}.status."

    @property
    def agent_group_prefix(self) -> str:
        return f"{self.prefix}.agent."

    @property
    def spec_topic_base(self) -> str:
        """The spec topics' name without the slot: the placement policy's topic (slot n is
        partition 0 of ``<spec_topic_base>.<n>``)."""
        return f"{self.prefix}.spec"

    @property
    def status_topic_base(self) -> str:
        return f"{self.prefix}.status"

    def spec_topic(self, slot: int) -> str:
        return f"{self.spec_prefix}{slot}"

    def status_topic(self, slot: int) -> str:
        return f"{self.status_prefix}{slot}"

    @property
    def status_pattern(self) -> str:
        """Every status topic, as a librdkafka subscription pattern (a leading ``^`` makes it one)."""
        return f"^{re.escape(self.status_prefix)}[0-9]+$"

    def status_slot(self, topic: str) -> int | None:
        """The slot whose status topic ``topic`` is; None if it is none of this layout's."""
        return self.topic_slot(topic) if topic.startswith(self.status_prefix) else None

    def topic_slot(self, topic: str) -> int | None:
        """The slot whose spec or status topic ``topic`` is; None if it is neither of this layout's."""
        for prefix in (self.spec_prefix, self.status_prefix):
            if topic.startswith(prefix):
                rest = topic[len(prefix) :]
                return int(rest) if rest.isascii() and rest.isdigit() else None
        return None

    @property
    def server_group(self) -> str:
        return f"{self.prefix}.servers"

    def agent_group(self, cluster: str) -> str:
        """The group an agent commits its offsets under (it is assigned, never rebalanced)."""
        return f"{self.agent_group_prefix}{cluster}"


DEFAULT = Layout()
