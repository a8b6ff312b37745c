"""Calls a source sends concurrently, each until accepted, and the counts tests and benchmarks wait on."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

from maestro import client_errors
from maestro.client import MaestroClient

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

    async def until_accepted(
        self,
        what: str,
        clients: Sequence[MaestroClient],
        first: int,
        call: Callable[[MaestroClient], Awaitable[None]],
        *,
        call_timeout: float,
        give_up_after: float,
        retried: Callable[[client_errors.MaestroCallError], bool] = lambda exc: exc.retryable,
        went_through: Callable[[client_errors.MaestroCallError], bool] = lambda exc: False,
        context: Callable[[], str] = str,
    ) -> None:
        """Send ``call`` as a source does until it is accepted: first to ``clients[first]``, again
        to the next one after a pause doubling up to 2 s when it fails with an error ``retried``
        says to send again or times out; counted in ``retries`` by reason. Any other error fails it,
        but one ``went_through`` says means that an earlier unanswered attempt was accepted (a
        delete's NOT_FOUND, say). ``what`` names the call and ``context`` adds to its failures."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + give_up_after
        attempt, pause, unsure = first, 0.2, False
        while True:
            try:
                async with asyncio.timeout(call_timeout):
                    await call(clients[attempt % len(clients)])
                return
            except client_errors.MaestroCallError as exc:
                if unsure and went_through(exc):
                    return
                if not retried(exc):
                    raise AssertionError(f"{what} failed with {exc}{context()}") from None
                reason, detail = exc.code, exc.details
            except TimeoutError:
                reason, detail = "TIMEOUT", f"no answer within {call_timeout:.0f}s"
            unsure = True
            await self.retried(reason)
            if loop.time() > give_up:
                raise AssertionError(
                    f"{what} was not accepted within {give_up_after:.0f}s; "
                    f"last error {reason}: {detail}{context()}"
                )
            attempt += 1
            await asyncio.sleep(pause)
            pause = min(pause * 2, 2.0)

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


@contextlib.asynccontextmanager
async def in_background(run: Callable[[], Awaitable[None]], name: str) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``run()`` in the background; on leaving, wait for it to finish (its errors propagate),
    or cancel it when the block fails."""
    task = asyncio.ensure_future(run())
    task.set_name(name)
    try:
        yield task
    except BaseException:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise
    await task
