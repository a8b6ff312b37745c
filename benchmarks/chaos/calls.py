"""Calls a source sends concurrently, each until accepted, and the counts tests and benchmarks wait on."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


class Calls:
    """Calls a source sends ``concurrency`` at once, each until it is accepted: how many were, and
    what made some be sent again; tests wait on those counts. The first call that fails for good
    is the error of all (the others are cancelled)."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self.acknowledged = 0
        self.retries: Counter[str] = Counter()
        self.error: BaseException | None = None
        self._changed = asyncio.Condition()

    async def send_all(self, items: Sequence[T], send: Callable[[int, T], Awaitable[None]]) -> None:
        """``send(index, item)`` every item, in order, ``concurrency`` at once."""
        queue: asyncio.Queue[tuple[int, T]] = asyncio.Queue()
        for entry in enumerate(items):
            queue.put_nowait(entry)

        async def worker() -> None:
            while not queue.empty():
                await send(*queue.get_nowait())
                async with self._changed:
                    self.acknowledged += 1
                    self._changed.notify_all()

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(self.concurrency):
                    group.create_task(worker())
        except ExceptionGroup as failed:
            self.error = failed.exceptions[0]
            async with self._changed:
                self._changed.notify_all()
            raise self.error from None

    async def retried(self, reason: str) -> None:
        async with self._changed:
            self.retries[reason] += 1
            self._changed.notify_all()

    async def until(
        self, what: str, condition: Callable[[], bool], timeout: float, context: str = ""
    ) -> None:
        """Wait until ``condition`` (of these counts) holds; fails saying what was seen."""
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: condition() or self.error is not None)
        except TimeoutError:
            raise AssertionError(
                f"expected {what} within {timeout:.0f}s, seen {self.acknowledged} calls accepted "
                f"(retries {dict(self.retries)}){context}"
            ) from None
        if self.error is not None:
            raise AssertionError(f"the calls failed: {self.error}")
