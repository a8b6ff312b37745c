"""The messages the Kafka clients carry: one to publish (`Outgoing`) and one read (`Incoming`)."""

from __future__ import annotations

from dataclasses import dataclass

from maestro.transport import binding


@dataclass(frozen=True)
class Outgoing:
    """One event to publish: where it goes and what it carries."""

    topic: str
    key: str
    headers: binding.Headers
    value: bytes | None
    partition: int | None = None


@dataclass(frozen=True)
class Incoming:
    topic: str
    partition: int
    offset: int
    key: str | None
    attributes: dict[str, str]
    content_type: str | None
    value: bytes | None

    @property
    def size(self) -> int:
        """Bytes this message put on the wire for its reader: key, headers and value."""
        return (
            len(self.key or "")
            + len(self.value or b"")
            + sum(len(k) + len(v) for k, v in self.attributes.items())
        )
