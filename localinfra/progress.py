"""Progress of long-running steps: one line when a step starts, one when it ends; or, for a
reporter that draws the steps itself (a terminal's progress display), the step's start and end."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol, runtime_checkable


class Reporter(Protocol):
    def __call__(self, message: str) -> None: ...


@runtime_checkable
class StepDisplay(Protocol):
    """A reporter that shows running steps itself (so it needs no start lines nor heartbeats)."""

    def __call__(self, message: str) -> None: ...

    def started(self, name: str, estimate: float | None) -> None: ...

    def ended(self, name: str, seconds: float, ok: bool) -> None: ...


def stderr_reporter(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def quiet_reporter(message: str) -> None:
    del message


def heartbeat(report: Reporter, message: str) -> None:
    """A sign of life in a long step; a step display shows that itself."""
    if not isinstance(report, StepDisplay):
        report(message)


@contextmanager
def step(report: Reporter, name: str, *, estimate: float | None = None) -> Iterator[None]:
    """Report ``name`` with its wall time; a failure is reported too, then re-raised. ``estimate``:
    roughly how many seconds the step takes, for a display to show what is left."""
    started = time.monotonic()
    display = report if isinstance(report, StepDisplay) else None
    if display is not None:
        display.started(name, estimate)
    else:
        report(f"[fleetplane] {name} ...")
    ok = False
    try:
        yield
        ok = True
    finally:
        seconds = time.monotonic() - started
        if display is not None:
            display.ended(name, seconds, ok)
        else:
            report(f"[fleetplane] {name} {'done in' if ok else 'FAILED after'} {seconds:.1f}s")
