"""Quarantined events (`maestro.api.quarantine`) <-> ``fleetplane.maestro.v1`` quarantine messages."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from google.protobuf import timestamp_pb2

from maestro.api import errors, quarantine
from maestro.wire import stubs

pb = stubs.quarantine

_MAX_SELECTED = 10_000


def _stamp(value: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def to_pb(item: quarantine.Quarantined) -> pb.QuarantinedEvent:
    return pb.QuarantinedEvent(
        id=item.id,
        kind=item.kind.value,
        consumer=item.consumer,
        resource_id=str(item.resource_id) if item.resource_id is not None else "",
        event_type=item.event_type,
        topic=item.topic,
        reason=item.reason,
        attempts=item.attempts,
        created_at=_stamp(item.created_at),
        quarantined_at=_stamp(item.quarantined_at),
        partition=item.partition if item.partition is not None else -1,
        offset=item.offset if item.offset is not None else -1,
        size=item.size,
    )


def from_pb(message: pb.QuarantinedEvent) -> quarantine.Quarantined:
    return quarantine.Quarantined(
        id=message.id,
        kind=quarantine.Kind(message.kind),
        consumer=message.consumer,
        resource_id=uuid.UUID(message.resource_id) if message.resource_id else None,
        event_type=message.event_type,
        topic=message.topic,
        reason=message.reason,
        attempts=message.attempts,
        created_at=message.created_at.ToDatetime(tzinfo=UTC),
        quarantined_at=message.quarantined_at.ToDatetime(tzinfo=UTC),
        partition=message.partition if message.partition >= 0 else None,
        offset=message.offset if message.offset >= 0 else None,
        size=message.size,
    )


def selection_from_pb(message: pb.QuarantineSelection) -> quarantine.Selection:
    """The selection a request names; raises InvalidArgument naming the field for a bad one."""
    if len(message.ids) > _MAX_SELECTED:
        raise errors.InvalidArgument(
            "ids",
            f"{len(message.ids)} ids in one call, at most {_MAX_SELECTED}",
            "split the call, or use all",
        )
    return quarantine.Selection(ids=tuple(message.ids), consumer=message.consumer, every=message.all)


def selection_to_pb(selection: quarantine.Selection) -> pb.QuarantineSelection:
    return pb.QuarantineSelection(ids=list(selection.ids), all=selection.every, consumer=selection.consumer)
