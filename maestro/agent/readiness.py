"""Whether an agent does its work, as its ``/readyz`` tells it (``kubeio.probes``).

Ready once it has its placement from Maestro, has its spec partition assigned and its background
loops run (watched by ``probes.Readiness``), for as long as its spec reader keeps polling Kafka
without error. Not ready, it says where it stands: waiting for Maestro (and what Maestro
answered), reading spec events failing (and with what), or the reader not having polled for a
while although no batch is being applied.
"""

from __future__ import annotations

import time
from collections.abc import Callable

# The reader polls every half second and between batches; a minute without a poll, while no batch
# is applied, means it is stuck (re-making its Kafka clients included: assigning waits at most 30 s).
STALE_POLL_SECONDS = 60.0


class ReaderState:
    """Where the agent's start and its spec reader stand."""

    def __init__(
        self,
        server: str,
        *,
        stale_after: float = STALE_POLL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._stale_after = stale_after
        self._server = server
        self._starting: str | None = f"waiting for its placement from Maestro at {server}"
        self._polled_at = clock()
        self._poll_error: str | None = None
        self._applying = False

    def placement_refused(self, why: str) -> None:
        """Maestro did not answer the placement lookup yet (it is retried)."""
        self._starting = f"waiting for its placement from Maestro at {self._server}: {why}"

    def starting(self, step: str) -> None:
        self._starting = step

    def started(self) -> None:
        self._starting = None
        self._polled_at = self._clock()

    def polled(self, error: BaseException | None = None) -> None:
        """A poll of the spec partition ended, with ``error`` if it failed (and is retried)."""
        self._polled_at = self._clock()
        self._poll_error = None if error is None else f"reading spec events failed: {error}"

    def applying(self, busy: bool) -> None:
        """A batch is being applied and reported (the reader waits meanwhile, as it should)."""
        self._applying = busy
        self._polled_at = self._clock()

    async def problem(self) -> str | None:
        if self._starting is not None:
            return self._starting
        if self._poll_error is not None:
            return self._poll_error
        idle = self._clock() - self._polled_at
        if not self._applying and idle > self._stale_after:
            return f"the spec reader has not polled Kafka for {idle:.0f}s"
        return None
