"""Consumers (clusters that receive work) and where their spec events go in Kafka.

Used by storage (which allocates placements and stores consumers), the query service and the
Kafka transport (which reads an agent's events from exactly its consumer's topic partition).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from maestro.api import errors

# A DNS-1123 subdomain, as Kubernetes names clusters and namespaces.
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_NAME_MAX = 253
# Kubernetes label syntax: an optional DNS prefix and a name of at most 63 characters.
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_LABEL_PART_MAX = 63


@dataclass(frozen=True, slots=True)
class Placement:
    """The Kafka topic partition that carries one consumer's spec events, and only its."""

    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class PlacementPolicy:
    """How placement slots map onto topics.

    Slots are handed out once and never reused (storage draws them from a sequence): a new
    cluster must never read a deleted cluster's leftover events, nor hold a principal an old
    certificate names. With `partitions_per_topic` 1 (the Kafka transport's layout) slot n is
    partition 0 of its own topic "<topic>.<n>", and reports on its own "<status_topic>.<n>": each
    topic is one cluster's, so Kafka's ACLs can confine a cluster to its own. A larger value puts
    P clusters in the partitions of one topic "<topic>.<n // P>" (brokers that cap topics rather
    than partitions), which ACLs cannot tell apart; 0 puts every slot in `topic` itself.
    The server's wiring passes the transport's names; the defaults here are the same names.
    """

    topic: str = "fleetplane.maestro.spec"
    partitions_per_topic: int = 1
    status_topic: str = "fleetplane.maestro.status"

    def placement(self, slot: int) -> Placement:
        if slot < 0:
            raise ValueError(f"placement slot must be >= 0, got {slot}")
        if not self.partitions_per_topic:
            return Placement(topic=self.topic, partition=slot)
        return Placement(
            topic=f"{self.topic}.{slot // self.partitions_per_topic}",
            partition=slot % self.partitions_per_topic,
        )

    def status_topic_of(self, slot: int) -> str:
        """The topic the cluster in ``slot`` reports on."""
        if slot < 0:
            raise ValueError(f"placement slot must be >= 0, got {slot}")
        return f"{self.status_topic}.{slot}"


@dataclass(frozen=True, slots=True)
class Consumer:
    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    placement: Placement | None = None
    created_at: datetime | None = None
    # The placement slot, never handed out twice: a cluster's *incarnation*. Certificates of a
    # cluster's agent name it, so a cluster re-created under the same name (a new slot) does not
    # honour the old cluster's certificates.
    slot: int | None = None
    #: where the cluster's agent publishes status reports (empty: not known to this reader)
    status_topic: str = ""

    @property
    def spec_placement(self) -> Placement:
        """Where this consumer's spec events go; every stored consumer has one."""
        if self.placement is None:
            raise errors.Conflict(
                f"consumer {self.name} has no Kafka placement", "register it through the server"
            )
        return self.placement

    @property
    def placement_slot(self) -> int:
        """This consumer's slot; every stored consumer has one."""
        if self.slot is None:
            raise errors.Conflict(
                f"consumer {self.name} has no placement slot", "register it through the server"
            )
        return self.slot


def validate_name(name: str, field_name: str = "name") -> str:
    if not name:
        raise errors.InvalidArgument(field_name, "is empty", "give the consumer (cluster) name")
    if len(name) > _NAME_MAX or not _NAME.fullmatch(name):
        raise errors.InvalidArgument(
            field_name,
            f"{name!r} is not a DNS-1123 subdomain",
            "use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit",
        )
    return name


def check_lookup_name(name: str, field_name: str = "name") -> str:
    """A name a client looks a consumer up by: any text PostgreSQL can compare (no NUL, not over
    the DNS name length), so a name that cannot exist is simply not found."""
    if "\x00" in name:
        raise errors.InvalidArgument(field_name, "contains a NUL byte", "remove it")
    if len(name) > _NAME_MAX:
        raise errors.InvalidArgument(
            field_name, f"is {len(name)} characters, over the limit of {_NAME_MAX}", "shorten it"
        )
    return name


def validate_labels(labels: Mapping[str, str], field_name: str = "labels") -> dict[str, str]:
    """Kubernetes label rules, so labels copied from a cluster object are always accepted."""
    out: dict[str, str] = {}
    for key, value in labels.items():
        path = f"{field_name}[{key!r}]"
        if not isinstance(key, str) or not isinstance(value, str):
            raise errors.InvalidArgument(path, "keys and values must be strings")
        prefix, _, name = key.rpartition("/")
        if not name or len(name) > _LABEL_PART_MAX or not _LABEL_NAME.fullmatch(name):
            raise errors.InvalidArgument(
                path,
                "is not a valid label key",
                "use at most 63 letters, digits, '-', '_' or '.', optionally after a 'dns.prefix/'",
            )
        if prefix and (len(prefix) > _NAME_MAX or not _NAME.fullmatch(prefix)):
            raise errors.InvalidArgument(path, "has an invalid prefix", "make the prefix a DNS subdomain")
        if len(value) > _LABEL_PART_MAX or not _LABEL_NAME.fullmatch(value):
            raise errors.InvalidArgument(
                path, f"value {value!r} is not a valid label value", "use at most 63 letters, digits, '-_.'"
            )
        out[key] = value
    return out


def new_consumer(name: str, labels: Mapping[str, str] | None = None) -> Consumer:
    """A validated consumer as a client asks for it (storage adds the placement)."""
    return Consumer(name=validate_name(name), labels=validate_labels(labels or {}))
