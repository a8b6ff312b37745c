"""CloudEvents (the domain model) <-> Kafka messages in the binary content mode."""

from __future__ import annotations

from maestro.api import events
from maestro.transport import binding
from maestro.transport.messages import Incoming, Outgoing


def to_message(event: events.CloudEvent, *, topic: str, key: str, partition: int | None = None) -> Outgoing:
    attributes: dict[str, object] = {
        "specversion": event.spec_version,
        "id": event.id,
        "source": event.source,
        "type": event.type,
        "time": event.time,
        **event.extensions,
    }
    headers = binding.encode(attributes, event.data_content_type)
    return Outgoing(topic=topic, key=key, headers=headers, value=event.data or None, partition=partition)


def from_message(message: Incoming) -> events.CloudEvent:
    """Extensions stay strings: the typed readers in ``maestro.api.events`` accept them."""
    attrs = dict(message.attributes)
    core = {name: attrs.pop(name, "") for name in ("specversion", "id", "source", "type")}
    when = attrs.pop("time", None)
    extensions: dict[str, events.ExtensionValue] = dict(attrs)
    return events.CloudEvent(
        id=core["id"],
        source=core["source"],
        type=core["type"],
        spec_version=core["specversion"] or events.SPEC_VERSION,
        time=events.parse_time(when, "ce_time") if when else None,
        extensions=extensions,
        data=message.value or b"",
        data_content_type=message.content_type,
    )
