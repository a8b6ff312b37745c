"""The Kafka ACLs Maestro grants: a cluster's principal its own topics and group and nothing more,
a benchmark's shared principal those of every cluster (`fleet_acls`); and how to list and compare them."""

from __future__ import annotations

from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)

from maestro.api import consumers
from maestro.transport import layout
from trust.identity import Identity, PrincipalForm


def cluster_principal(consumer: consumers.Consumer, form: PrincipalForm = PrincipalForm.MAPPED) -> str:
    """The principal of the consumer's cluster: its name and placement slot (`trust.identity`), as
    the brokers name it (``form``)."""
    return Identity.cluster(consumer.name, consumer.placement_slot).kafka_principal_as(form)


def cluster_acls(
    consumer: consumers.Consumer, names: layout.Layout, form: PrincipalForm = PrincipalForm.MAPPED
) -> list[AclBinding]:
    """What a cluster's principal may do, and nothing more: read its spec topic, write its status
    topic, commit its offsets under its group (Read and Write imply Describe)."""
    placement = consumer.spec_placement
    if placement.partition != 0 or not consumer.status_topic:
        raise ValueError(
            f"consumer {consumer.name} shares a topic with other clusters "
            f"({placement.topic}[{placement.partition}]): ACLs cannot confine it to its own events"
        )
    principal = cluster_principal(consumer, form)
    return [
        allow(ResourceType.TOPIC, placement.topic, principal, AclOperation.READ),
        allow(ResourceType.TOPIC, consumer.status_topic, principal, AclOperation.WRITE),
        allow(ResourceType.GROUP, names.agent_group(consumer.name), principal, AclOperation.READ),
    ]


def fleet_acls(principal: str, names: layout.Layout) -> list[AclBinding]:
    """Prefixed ACLs for one principal speaking for every cluster under ``names`` (a benchmark's
    simulated agents, which share a process and an identity): read any spec topic, write any
    status topic, commit under any agent group."""
    return [
        allow(ResourceType.TOPIC, names.spec_prefix, principal, AclOperation.READ, prefixed=True),
        allow(ResourceType.TOPIC, names.status_prefix, principal, AclOperation.WRITE, prefixed=True),
        allow(ResourceType.GROUP, names.agent_group_prefix, principal, AclOperation.READ, prefixed=True),
    ]


def allow(
    kind: ResourceType, name: str, principal: str, operation: AclOperation, *, prefixed: bool = False
) -> AclBinding:
    """Allow ``principal`` ``operation`` on ``name`` (on every name it prefixes, if ``prefixed``)."""
    pattern = ResourcePatternType.PREFIXED if prefixed else ResourcePatternType.LITERAL
    return AclBinding(kind, name, pattern, principal, "*", operation, AclPermissionType.ALLOW)


def acl_key(binding: AclBinding) -> tuple[str, ...]:
    """The binding's fields as text: what tells whether the broker holds a binding wanted."""
    return tuple(
        str(v)
        for v in (
            binding.restype,
            binding.name,
            binding.resource_pattern_type,
            binding.principal,
            binding.host,
            binding.operation,
            binding.permission_type,
        )
    )


def every_acl(principal: str | None = None) -> AclBindingFilter:
    """Every ACL (of ``principal``, if given): None matches anything (librdkafka's filter)."""
    return AclBindingFilter(
        ResourceType.ANY,
        None,  # type: ignore[arg-type]
        ResourcePatternType.ANY,
        principal,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
