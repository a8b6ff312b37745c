"""Periodic full reads (the safety nets under the watches) that stay a bounded share of the time.

A full list of every work is cheap with a few hundred works and takes seconds of the Maestro
server's time with 150,000 (the profile of a full-scale template change had a fifth of the server's
samples in listing). Run on a fixed period, the safety nets would take a share of the server that
grows with the fleet; here each pause grows with the read before it instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

#: the most of the time a periodic read may take, whatever its size
MAX_SHARE = 0.05


def next_pause(period: float, took: float, max_share: float = MAX_SHARE) -> float:
    """The pause after a read that took ``took`` seconds: ``period``, or longer so that the read
    is at most ``max_share`` of a pause and a read together."""
    return max(period, took * (1 - max_share) / max_share)


async def run_periodically(
    read: Callable[[], Awaitable[object]],
    period: float,
    *,
    what: str,
    max_share: float = MAX_SHARE,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    on_error: Callable[[], None] | None = None,
) -> None:
    """Call ``read`` after ``period`` seconds, and again after each ``next_pause``, until cancelled;
    a failed read is logged (and ``on_error`` told) and tried again after the next pause."""
    pause = period
    while True:
        await sleep(pause)
        started = clock()
        try:
            await read()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s failed, retrying next period: %s", what, exc)
            if on_error is not None:
                on_error()
        pause = next_pause(period, clock() - started, max_share)
