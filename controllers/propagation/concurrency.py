"""Bounded concurrency for the propagation pass: a semaphore place given up early, and writes run a
few at a time.

Used by ``controllers.propagation.controller`` (a pass's place among those planning at once) and
by the pass's writes of works and mirrors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

_T = TypeVar("_T")
_R = TypeVar("_R")


class Slot:
    """A place of a semaphore that its holder may give up before the end of its block."""

    def __init__(self, semaphore: asyncio.Semaphore) -> None:
        self._semaphore = semaphore
        self._held = False

    async def __aenter__(self) -> Slot:
        await self._semaphore.acquire()
        self._held = True
        return self

    async def __aexit__(self, *_: object) -> None:
        self.release()

    def release(self) -> None:
        if self._held:
            self._held = False
            self._semaphore.release()


async def each(
    items: Sequence[_T],
    write: Callable[[_T], Awaitable[_R]],
    *,
    limit: int,
    ready: Callable[[_T], Awaitable[None]] | None = None,
) -> list[_R]:
    """``write`` for every item (once ``ready`` for it returned, when given: waiting holds no write
    slot), ``limit`` at a time, results in order; the first exception cancels the rest and fails
    the pass (it is retried as a whole, and every write is idempotent)."""
    if not items:
        return []
    slots = asyncio.Semaphore(limit)

    async def one(item: _T) -> _R:
        if ready is not None:
            await ready(item)
        async with slots:
            return await write(item)

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(one(item)) for item in items]
    return [t.result() for t in tasks]
