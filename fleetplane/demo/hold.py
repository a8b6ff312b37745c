"""How long ``fleetplane demo`` keeps the platform running for a person to look at it.

A hold is bounded: a demo left in a terminal nobody watches ends by itself, through ``pulumi
destroy``, rather than keeping a fleet of processes alive for days. Ctrl-C ends it sooner, and a
process of the platform that dies ends it at once (what is held would no longer be the platform).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from localinfra import process

#: the default ``--hold``: long enough to click through the UI and try the CLI
DEFAULT = "30m"
_PART = re.compile(r"(\d+)([hms])")
_SECONDS = {"h": 3600, "m": 60, "s": 1}


class BadDuration(ValueError):
    """A ``--hold`` that is not a duration."""


def parse(text: str) -> float:
    """Seconds in a duration written as Go and kubectl write them (``30m``, ``1h30m``, ``90s``);
    ``0`` is no hold."""
    spelled = text.strip().lower()
    if spelled == "0":
        return 0.0
    parts = _PART.findall(spelled)
    if not parts or "".join(n + u for n, u in parts) != spelled:
        raise BadDuration(f"{text!r} is not a duration: write it as 30m, 1h30m or 90s (0: no hold)")
    return float(sum(int(n) * _SECONDS[u] for n, u in parts))


def announcement(seconds: float, now: datetime | None = None) -> str:
    """The line saying until when the platform is held and how to end it sooner."""
    until = (now or datetime.now(UTC)) + timedelta(seconds=seconds)
    return (
        f"holding the platform until {until:%H:%M} UTC ({timedelta(seconds=int(seconds))}; "
        "--hold DURATION to change, --no-hold not to hold); press Ctrl-C to run `pulumi destroy`"
    )


def wait(
    seconds: float,
    dead: Callable[[], Sequence[process.ProcessRecord]],
    *,
    poll: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[process.ProcessRecord]:
    """Wait ``seconds`` or until a process dies: the processes that died ([] when the time ran out)."""
    deadline = clock() + seconds
    while (left := deadline - clock()) > 0:
        if died := list(dead()):
            return died
        sleep(min(poll, left))
    return []
