"""Wakes waiters when PostgreSQL NOTIFYs a channel: one LISTEN connection per server process.

The outbox relay waits on new outbox rows, status streams on stored statuses. A waiter also wakes
after a timeout, so a lost notification costs latency, never correctness.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, dsn: str, channels: Sequence[str]) -> None:
        self._dsn = dsn
        self._channels = list(channels)
        self._conditions = {c: asyncio.Condition() for c in channels}
        #: notifications heard so far on each channel (and wake-ups after a lost connection)
        self._heard = dict.fromkeys(channels, 0)
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    async def start(self, *, ready_within: float = 10.0) -> None:
        """Starts listening and returns once every channel is LISTENed to, or after
        ``ready_within`` seconds when the database cannot be reached yet: a commit made after a
        ready start is always heard, and one made before it costs a waiter its timeout at most."""
        self._task = asyncio.create_task(self._listen(), name="pg-notifier")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(ready_within):
                await self._listening.wait()

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        return [self._task] if self._task else []

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self) -> None:
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._dsn, autocommit=True) as conn:
                    for channel in self._channels:
                        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    self._listening.set()
                    async for note in conn.notifies():
                        await self._wake(note.channel)
            except psycopg.OperationalError as exc:
                log.warning("notification connection lost, reconnecting: %s", exc)
                for channel in self._channels:
                    await self._wake(channel)
                await asyncio.sleep(1)

    async def _wake(self, channel: str) -> None:
        condition = self._conditions.get(channel)
        if condition is not None:
            self._heard[channel] += 1
            async with condition:
                condition.notify_all()

    def heard(self, channel: str) -> int:
        """How many notifications of ``channel`` this process has heard: a waiter that read it
        before looking for work passes it to ``wait`` so that none heard meanwhile is missed."""
        return self._heard[channel]

    async def wait(self, channel: str, timeout: float, *, heard: int | None = None) -> None:
        """Until the next notification of ``channel`` or ``timeout``; at once when more than
        ``heard`` (a count ``heard()`` gave) have been heard."""
        condition = self._conditions[channel]
        if heard is not None and self._heard[channel] != heard:
            return
        async with condition:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await condition.wait()
