"""Who made a call: a certificate's identity, a token's user, or anyone (an insecure server)."""

from __future__ import annotations

import dataclasses
import datetime

from trust.identity import Identity


@dataclasses.dataclass(frozen=True, slots=True)
class User:
    """A token's owner, as the hub's TokenReview named them."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class Caller:
    """Who made a call: a certificate's identity, a token's user, or anyone (an insecure server)."""

    identity: Identity | None = None
    user: User | None = None
    serial: int | None = None
    not_after: datetime.datetime | None = None
    # kept to check again during a long stream; never shown
    token: str = dataclasses.field(default="", repr=False)
    insecure: bool = False

    def __str__(self) -> str:
        if self.identity is not None:
            return str(self.identity)
        if self.user is not None:
            return f"user {self.user.name!r}"
        return "anyone (the server is insecure)"


def stream_owner(caller: Caller) -> str | None:
    """Whom a caller's open streams count against (None: the server-wide limit only)."""
    return None if caller.insecure else str(caller)
