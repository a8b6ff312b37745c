"""Progress lines for long-running steps: one line when a step starts, one when it ends."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol


class Reporter(Protocol):
    def __call__(self, message: str) -> None: ...


def stderr_reporter(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def quiet_reporter(message: str) -> None:
    del message


@contextmanager
def step(report: Reporter, name: str) -> Iterator[None]:
    """Report ``name`` with its wall time; a failure is reported too, then re-raised."""
    started = time.monotonic()
    report(f"[fleetplane] {name} ...")
    try:
        yield
    except BaseException:
        report(f"[fleetplane] {name} FAILED after {time.monotonic() - started:.1f}s")
        raise
    report(f"[fleetplane] {name} done in {time.monotonic() - started:.1f}s")
