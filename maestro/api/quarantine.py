"""Quarantined events: what kept failing, set aside so that it blocks nothing.

A spec event Kafka refuses for good (message too large for its topic, a principal refused) is tried
``attempts`` times, then moved out of the outbox; a status event the server cannot decode is set
aside at once (decoding it again gives the same answer), one it cannot store after ``attempts``
tries while the database answers. An operator lists them, retries them (a spec event goes back to
the outbox, a status event back onto its status topic) or drops them.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from maestro.api import errors

#: How many times an event may fail for its own reasons before it is set aside.
DEFAULT_ATTEMPTS = 5


class Kind(enum.Enum):
    #: a spec event of the outbox, which Kafka refused
    SPEC = "spec"
    #: a status event read from a cluster's status topic, which the server could not take
    STATUS = "status"


@dataclass(frozen=True, slots=True)
class Quarantined:
    id: int
    kind: Kind
    consumer: str
    resource_id: uuid.UUID | None
    event_type: str
    topic: str
    reason: str
    attempts: int
    created_at: datetime
    quarantined_at: datetime
    #: where a status event was read; None for spec events
    partition: int | None = None
    offset: int | None = None
    size: int = 0


@dataclass(frozen=True, slots=True)
class Selection:
    """Which quarantined events an operator means: these ids, or every one (of a consumer)."""

    ids: tuple[int, ...] = ()
    consumer: str = ""
    every: bool = False
    kinds: frozenset[Kind] = field(default_factory=lambda: frozenset(Kind))

    def __post_init__(self) -> None:
        if bool(self.ids) == self.every:
            raise errors.InvalidArgument(
                "ids",
                "name the quarantined events by id, or ask for all of them, not both or neither",
                "give ids (as `fleetplane maestro quarantine list` shows them) or --all",
            )
        if any(i <= 0 for i in self.ids):
            raise errors.InvalidArgument("ids", "ids are positive numbers", "copy them from the list")


def printable(text: str, limit: int = 2000) -> str:
    """``text`` as PostgreSQL's text columns take it and a terminal shows it: NULs and lone
    surrogates escaped, at most ``limit`` characters."""
    safe = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return safe if len(safe) <= limit else safe[: limit - 3] + "..."


@dataclass(frozen=True, slots=True)
class StatusMessage:
    """A status event to set aside, as it was read: its key, headers (as JSON) and value."""

    consumer: str
    resource_id: uuid.UUID | None
    event_type: str
    topic: str
    partition: int
    offset: int
    key: bytes | None
    headers: bytes
    payload: bytes | None
    reason: str
    attempts: int


@dataclass(frozen=True, slots=True)
class Retried:
    """What a retry did: spec events put back in the outbox, status events sent to their topics
    again, and events left quarantined (a spec event whose consumer is gone)."""

    spec: int = 0
    status: int = 0
    left: int = 0
