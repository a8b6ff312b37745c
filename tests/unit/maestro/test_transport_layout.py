"""Kafka layout, the ACLs it is enforced by, and the CloudEvents binary binding.

Cases: every consumer has a spec topic and a status topic of its own, named after its slot, and
the placement policy the server uses agrees with the layout; a status topic's name gives its slot
back and the subscription pattern matches exactly the layout's status topics; a cluster's
principal gets Read on its spec topic, Write on its status topic and Read on its group, literal,
nothing else, and a consumer sharing a topic is refused ACLs; a shared fleet principal's ACLs are
prefixed under the layout; attributes round-trip through ``ce_`` headers in their canonical string
form (ints, booleans, UTC times); the content type travels in its own header; foreign headers are
ignored.
"""

from __future__ import annotations

import datetime
import re

import pytest
from confluent_kafka.admin import AclOperation, AclPermissionType, ResourcePatternType, ResourceType

from maestro.api import consumers
from maestro.transport import binding, layout
from maestro.transport.acls import cluster_acls, fleet_acls

NAMES = layout.Layout("fleet.test")
POLICY = consumers.PlacementPolicy(
    topic=NAMES.spec_topic_base, partitions_per_topic=1, status_topic=NAMES.status_topic_base
)


def registered(name: str, slot: int) -> consumers.Consumer:
    return consumers.Consumer(
        name, placement=POLICY.placement(slot), slot=slot, status_topic=POLICY.status_topic_of(slot)
    )


def test_each_consumer_has_topics_of_its_own() -> None:
    assert POLICY.placement(7) == consumers.Placement("fleet.test.spec.7", 0)
    assert POLICY.status_topic_of(7) == "fleet.test.status.7" == NAMES.status_topic(7)
    assert NAMES.spec_topic(7) == POLICY.placement(7).topic
    assert consumers.PlacementPolicy().placement(3) == consumers.Placement("fleetplane.maestro.spec.3", 0)


@pytest.mark.parametrize(
    ("topic", "slot"),
    [
        ("fleet.test.status.0", 0),
        ("fleet.test.status.42", 42),
        ("fleet.test.status.", None),
        ("fleet.test.status.4x", None),
        ("fleet.test.spec.4", None),
        ("fleet.testXstatus.4", None),
        ("other.status.4", None),
        ("fleet.test.status.\u0663", None),
    ],
)
def test_a_status_topic_gives_its_slot_and_the_pattern_matches_it_alone(topic: str, slot: int | None) -> None:
    assert NAMES.status_slot(topic) == slot
    assert bool(re.match(NAMES.status_pattern, topic)) == (slot is not None)


def test_a_cluster_may_read_its_spec_topic_write_its_status_topic_and_commit_as_its_group() -> None:
    acls = cluster_acls(registered("worker-1", 7), NAMES)
    found = {
        (a.restype, a.name, a.resource_pattern_type, a.principal, a.host, a.operation, a.permission_type)
        for a in acls
    }
    principal = "User:cluster.worker-1.7"
    literal, allow = ResourcePatternType.LITERAL, AclPermissionType.ALLOW
    assert found == {
        (ResourceType.TOPIC, "fleet.test.spec.7", literal, principal, "*", AclOperation.READ, allow),
        (ResourceType.TOPIC, "fleet.test.status.7", literal, principal, "*", AclOperation.WRITE, allow),
        (ResourceType.GROUP, "fleet.test.agent.worker-1", literal, principal, "*", AclOperation.READ, allow),
    }


def test_a_consumer_sharing_a_topic_cannot_be_confined_by_acls() -> None:
    shared = consumers.Consumer(
        "c", placement=consumers.Placement("fleet.test.spec", 5), slot=5, status_topic="fleet.test.status.5"
    )
    with pytest.raises(ValueError, match="shares a topic"):
        cluster_acls(shared, NAMES)


def test_a_fleet_principal_gets_prefixed_acls_under_the_layout() -> None:
    acls = fleet_acls("User:service.bench-agents", NAMES)
    assert {(a.name, a.resource_pattern_type, a.operation) for a in acls} == {
        ("fleet.test.spec.", ResourcePatternType.PREFIXED, AclOperation.READ),
        ("fleet.test.status.", ResourcePatternType.PREFIXED, AclOperation.WRITE),
        ("fleet.test.agent.", ResourcePatternType.PREFIXED, AclOperation.READ),
    }


def test_binary_binding_round_trip() -> None:
    when = datetime.datetime(2026, 11, 23, 12, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    headers = binding.encode(
        {
            "id": "e1",
            "specversion": "1.0",
            "resourceversion": 3,
            "deleted": False,
            "time": when,
            "skip": None,
        },
        content_type="application/json",
    )
    attrs, content_type = binding.decode([*headers, ("traceparent", b"00-abc")])
    assert attrs == {
        "id": "e1",
        "specversion": "1.0",
        "resourceversion": "3",
        "deleted": "false",
        "time": "2026-11-23T10:00:00Z",
    }
    assert content_type == "application/json"
