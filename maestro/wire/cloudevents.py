"""CloudEvent protobuf (io.cloudevents.v1) <-> `maestro.api.events.CloudEvent`.

Called by the gRPC CloudEventService (Publish decodes, Subscribe encodes) and by fleetplane's own
gRPC source clients. Attribute encoding follows upstream Maestro: keys are "ce-" + the attribute
name except the bare "contenttype"; integers travel as ce_integer (int32), times as ce_timestamp,
and readers also accept both as strings; data is JSON in binary_data.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from maestro.api import errors, events
from maestro.wire import stubs

pb = stubs.cloudevent

PREFIX = "ce-"
CONTENT_TYPE_KEY = "contenttype"
_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1
# Carried in the message's own fields; an attribute naming them would be a second, spoofable copy.
_DEDICATED = frozenset({"id", "source", "type", "specversion"})
_NAME = re.compile(r"^[a-z0-9]+$")


def to_pb(event: events.CloudEvent) -> pb.CloudEvent:
    message = pb.CloudEvent(
        id=event.id, source=event.source, spec_version=event.spec_version, type=event.type
    )
    attrs = message.attributes
    if event.time is not None:
        attrs[PREFIX + "time"].ce_timestamp.FromDatetime(event.time.astimezone(UTC))
    if event.data_content_type is not None:
        attrs[CONTENT_TYPE_KEY].ce_string = event.data_content_type
    for name, value in event.extensions.items():
        _set_value(attrs[PREFIX + name], value, name)
    if event.data:
        message.binary_data = event.data
    return message


def _set_value(slot: pb.CloudEventAttributeValue, value: events.ExtensionValue, name: str) -> None:
    # bool before int: True is an int to Python.
    if isinstance(value, bool):
        slot.ce_boolean = value
    elif isinstance(value, int):
        if not _INT32_MIN <= value <= _INT32_MAX:
            raise errors.InvalidArgument(
                name, f"{value} does not fit a ce_integer (int32)", "send it as a string"
            )
        slot.ce_integer = value
    elif isinstance(value, str):
        slot.ce_string = value
    elif isinstance(value, bytes):
        slot.ce_bytes = value
    elif isinstance(value, datetime):
        slot.ce_timestamp.FromDatetime(value.astimezone(UTC))
    else:
        raise TypeError(f"extension {name!r}: unsupported value type {type(value).__name__}")


def from_pb(message: pb.CloudEvent) -> events.CloudEvent:
    """Decode a received event; every problem is an InvalidArgument naming the attribute."""
    if message.type == events.HEARTBEAT_TYPE:
        return events.CloudEvent(
            id=message.id,
            source=message.source,
            type=message.type,
            spec_version=message.spec_version or events.SPEC_VERSION,
        )
    for field, given in (("id", message.id), ("source", message.source), ("type", message.type)):
        if not given:
            raise errors.InvalidArgument(field, "is empty", f"set the event's {field}")
    if message.spec_version != events.SPEC_VERSION:
        raise errors.InvalidArgument(
            "spec_version", f"{message.spec_version!r} is not supported", f"send {events.SPEC_VERSION!r}"
        )
    if not message.attributes:
        raise errors.InvalidArgument(
            "attributes", "is empty", "send the event's attributes (ce-resourceid, ce-clustername, ...)"
        )
    time: datetime | None = None
    content_type: str | None = None
    extensions: dict[str, events.ExtensionValue] = {}
    for key, slot in message.attributes.items():
        where = f"attributes[{key}]"
        value = _get_value(slot, where)
        if key == CONTENT_TYPE_KEY:
            if not isinstance(value, str):
                raise errors.InvalidArgument(where, "must be a string", "send e.g. application/json")
            content_type = value
            continue
        if not key.startswith(PREFIX):
            raise errors.InvalidArgument(where, 'expected the "ce-" prefix', f"send it as ce-{key.lower()}")
        name = key[len(PREFIX) :]
        if not _NAME.match(name):
            raise errors.InvalidArgument(where, "attribute names must be lower-case letters and digits")
        if name in _DEDICATED:
            raise errors.InvalidArgument(where, "is carried in a dedicated field", f"set the event's {name}")
        if name == "datacontenttype":
            raise errors.InvalidArgument(where, 'is carried as "contenttype"', "send it under contenttype")
        if name == "time":
            time = value if isinstance(value, datetime) else events.parse_time(str(value), where)
            continue
        extensions[name] = value
    return events.CloudEvent(
        id=message.id,
        source=message.source,
        type=message.type,
        spec_version=message.spec_version,
        time=time,
        extensions=extensions,
        data=_data(message),
        data_content_type=content_type,
    )


def _get_value(slot: pb.CloudEventAttributeValue, where: str) -> events.ExtensionValue:
    kind = slot.WhichOneof("attr")
    if kind is None:
        raise errors.InvalidArgument(where, "has no value")
    if kind == "ce_timestamp":
        return slot.ce_timestamp.ToDatetime(tzinfo=UTC)
    value: events.ExtensionValue = getattr(slot, kind)
    return value


def _data(message: pb.CloudEvent) -> bytes:
    kind = message.WhichOneof("data")
    if kind == "binary_data":
        return message.binary_data
    if kind == "text_data":
        return message.text_data.encode()
    if kind == "proto_data":
        raise errors.InvalidArgument(
            "proto_data", "is not supported", "send the payload as JSON in binary_data"
        )
    return b""


def heartbeat_pb() -> pb.CloudEvent:
    """The Subscribe keep-alive: spec version, id and type only."""
    beat = events.heartbeat()
    return pb.CloudEvent(id=beat.id, spec_version=beat.spec_version, type=beat.type)
