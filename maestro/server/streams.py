"""Bounds on the server's long-lived status streams: how many are open, and what one holds.

Every open stream (a source's Subscribe, a WatchStatus or WatchStatusBatches call) costs a
database read on each stored status change and a waiter on the notifier; `StreamLimits` caps how
many a replica serves, in all and per caller, refusing one more with RESOURCE_EXHAUSTED. A
Subscribe stream also holds the resync answers not yet sent to its client: `Backlog` bounds them,
and a stream whose client reads too slowly to keep within the bound is ended rather than left to
grow the server's memory. Status changes themselves are never queued: a stream reads them from
the database when its client has taken the previous ones.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

import grpc

from maestro.api import errors

T = TypeVar("T")

# Who a call comes from, for the per-caller limit; None: unknown (the server-wide limit only).
Caller = Callable[[grpc.aio.ServicerContext], str | None]


def peer_identity(context: grpc.aio.ServicerContext) -> str | None:
    """The identity the transport authenticated (a TLS client certificate), or None."""
    identities = context.peer_identities()
    if not identities:
        return None
    return ",".join(i.decode(errors="replace") if isinstance(i, bytes) else str(i) for i in identities)


class StreamLimits:
    """Counts the open status streams of one replica; `open` refuses one past either limit.

    `caller` names who a call comes from: by default the identity its TLS client certificate
    proves; a server that authenticates callers otherwise passes its own. Calls it cannot name
    count against the server-wide limit only.
    """

    def __init__(self, max_streams: int, max_per_caller: int, caller: Caller = peer_identity) -> None:
        self.max_streams = max_streams
        self.max_per_caller = max_per_caller
        self._caller = caller
        self.open_streams = 0
        self._per_caller: collections.Counter[str] = collections.Counter()

    def acquire(
        self, context: grpc.aio.ServicerContext, kind: str, who: str | None = None
    ) -> Callable[[], None]:
        """Take one stream slot for the call and return what gives it back (call it once, when the
        stream ends); raises `errors.Exhausted` when no slot is free. ``who``: the caller as the
        server authenticated it (default: as ``caller`` names it from the call)."""
        who = who if who is not None else self._caller(context)
        if self.open_streams >= self.max_streams:
            raise errors.Exhausted(
                f"this server has {self.open_streams} status streams open, its limit",
                f"retry the {kind} later or on another replica; if every client needs its streams, "
                "raise the server's --max-streams or add replicas",
            )
        if who is not None and self._per_caller[who] >= self.max_per_caller:
            raise errors.Exhausted(
                f"{who} has {self._per_caller[who]} status streams open on this server, the limit per caller",
                f"close streams you no longer read before opening another {kind} (one stream can "
                "follow every bundle of a source), or raise the server's --max-streams-per-caller",
            )
        self.open_streams += 1
        if who is not None:
            self._per_caller[who] += 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self.open_streams -= 1
            if who is not None:
                self._per_caller[who] -= 1
                if not self._per_caller[who]:
                    del self._per_caller[who]

        return release

    def open_for(self, caller: str) -> int:
        return self._per_caller.get(caller, 0)


class Backlog(Generic[T]):
    """What one stream still has to send, at most `limit` items behind.

    An empty backlog takes any one answer whole (a resync answer is as large as the source's
    bundles: refusing it would refuse the resync for ever); more while earlier answers are unsent
    overflows it once they would pass `limit`. An overflowed backlog drops what it held and takes
    nothing more: its stream must end, and its client reconnect and resync.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.overflowed = False
        self._items: collections.deque[T] = collections.deque()

    def offer(self, items: Sequence[T]) -> bool:
        if self.overflowed:
            return False
        if self._items and len(self._items) + len(items) > self.limit:
            self.overflowed = True
            self._items.clear()
            return False
        self._items.extend(items)
        return True

    def pop(self) -> T | None:
        """The oldest item not sent yet (it stays counted until taken), or None."""
        return self._items.popleft() if self._items else None

    def __len__(self) -> int:
        return len(self._items)
