"""When to write status patches to the hub API server, so 150,000 Applications do not hot-loop it.

Called by the status aggregation controller: every computed patch is ``offer``-ed; a writer loop
calls ``drain`` for what may go out now, writes it, and reports back with ``written`` or
``failed``. The policy, with no I/O and an injectable clock:

- coalesce: many patches for one key before it is written count once (the latest wins), and a
  key keeps its place in the queue;
- skip no-ops: a patch identical to the last one written for that key (or to what the hub already
  holds, via ``prime``) is dropped without using any budget;
- rate limit: a token bucket (``rate`` writes per second, bursts of ``burst``) spaced over all
  keys, with ``delay`` telling the writer how long to sleep when the bucket is empty.

Keys are any hashable, typically ``(namespace, name)`` of the hub Application or ApplicationSet.
Only a digest of each written patch is remembered, so memory stays small per key.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Hashable, Mapping
from typing import Any

Clock = Callable[[], float]


def digest(patch: Mapping[str, Any]) -> bytes:
    """A stable fingerprint of a patch (key order does not matter)."""
    return hashlib.blake2b(
        json.dumps(patch, sort_keys=True, separators=(",", ":")).encode(), digest_size=16
    ).digest()


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up. Spending may run into debt, so a cost
    larger than the burst (a large status) goes out once and is paid back before anything else."""

    def __init__(self, *, rate: float, burst: float, clock: Clock = time.monotonic) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError("a token bucket needs rate > 0 and burst > 0")
        self.rate = rate
        self._burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._refilled_at = clock()

    @property
    def tokens(self) -> float:
        now = self._clock()
        elapsed = max(0.0, now - self._refilled_at)
        self._tokens = min(self._burst, self._tokens + elapsed * self.rate)
        self._refilled_at = now
        return self._tokens

    def spend(self, amount: float) -> None:
        self._tokens = self.tokens - amount

    def delay(self, amount: float) -> float:
        """Seconds until ``amount`` tokens are there."""
        return max(0.0, amount - self.tokens) / self.rate


@dataclasses.dataclass(frozen=True)
class PendingWrite:
    key: Hashable
    patch: Mapping[str, Any]
    digest: bytes


class WriteBatcher:
    """Coalescing, de-duplicating, rate-limited queue of status patches (see the module docstring)."""

    def __init__(self, *, rate: float, burst: int, clock: Clock = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("WriteBatcher needs rate > 0 writes/second and burst >= 1")
        self._bucket = TokenBucket(rate=rate, burst=burst, clock=clock)
        self._pending: collections.OrderedDict[Hashable, PendingWrite] = collections.OrderedDict()
        self._written: dict[Hashable, bytes] = {}
        self._in_flight: dict[Hashable, bytes] = {}
        # keys with a write out now (whatever its digest): not drained again until it lands
        self._busy: set[Hashable] = set()
        # keys written by someone else while a write of ours was out: which landed last is unknown
        self._unsure: set[Hashable] = set()

    def __len__(self) -> int:
        return len(self._pending)

    def prime(self, key: Hashable, current: Mapping[str, Any]) -> None:
        """Record what the hub already holds for ``key`` (e.g. at start), so an equal patch is skipped."""
        self._written[key] = digest(current)

    def overwritten(self, key: Hashable, current: Mapping[str, Any] | None) -> None:
        """Someone else wrote the object, leaving ``current`` (``None``: nothing we know of). If a
        write of ours is out, it may land before or after theirs: ``written`` or ``failed`` then
        return ``True``, and the caller offers the latest value again."""
        if key in self._busy:
            self._unsure.add(key)
        self._in_flight.pop(key, None)
        if current is None:
            self._written.pop(key, None)
        else:
            self._written[key] = digest(current)

    def forget(self, key: Hashable) -> None:
        """The object is gone: drop its pending patch and its memory."""
        self._pending.pop(key, None)
        self._written.pop(key, None)
        self._in_flight.pop(key, None)
        self._busy.discard(key)
        self._unsure.discard(key)

    def offer(self, key: Hashable, patch: Mapping[str, Any]) -> bool:
        """Queue ``patch`` for ``key``; ``False`` when the object already is (or is about to be) that."""
        fingerprint = digest(patch)
        # what the hub will hold once the write in flight (if any) lands
        baseline = self._in_flight.get(key, self._written.get(key))
        if fingerprint == baseline:
            self._pending.pop(key, None)  # an older pending patch is superseded by "no change"
            return False
        # replacing a pending value keeps the key's place in the queue
        self._pending[key] = PendingWrite(key, patch, fingerprint)
        return True

    def drain(self, limit: int | None = None) -> list[PendingWrite]:
        """The writes allowed now, oldest first, each using one token. A key whose write is still
        in flight waits (two writes of one object in flight could land in the wrong order)."""
        tokens = self._bucket.tokens
        chosen: list[Hashable] = []
        for key in self._pending:
            if tokens < len(chosen) + 1 or (limit is not None and len(chosen) >= limit):
                break
            if key not in self._busy:
                chosen.append(key)
        out: list[PendingWrite] = []
        for key in chosen:
            write = self._pending.pop(key)
            self._bucket.spend(1)
            self._in_flight[key] = write.digest
            self._busy.add(key)
            out.append(write)
        return out

    def written(self, write: PendingWrite) -> bool:
        """The write succeeded: remember it, so the same patch is not written again. ``True`` when
        the object was overwritten meanwhile (see ``overwritten``): offer the latest value again."""
        if self._landed(write):
            return True
        self._written[write.key] = write.digest
        return False

    def failed(self, write: PendingWrite) -> bool:
        """The write failed: queue it again unless a newer patch for the key is already waiting.
        ``True`` as for ``written``."""
        if write.key not in self._pending:
            self._pending[write.key] = write
        return self._landed(write)

    def _landed(self, write: PendingWrite) -> bool:
        """The write is no longer out; ``True`` (and nothing known of the object) when someone else
        wrote it meanwhile."""
        self._busy.discard(write.key)
        if self._in_flight.get(write.key) == write.digest:
            del self._in_flight[write.key]
        if write.key not in self._unsure:
            return False
        self._unsure.discard(write.key)
        self._written.pop(write.key, None)
        return True

    def delay(self) -> float:
        """Seconds until the next write may go out (0 when one may go now, or nothing waits)."""
        if not self._pending:
            return 0.0
        return self._bucket.delay(1)
