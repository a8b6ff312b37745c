"""`Doorbell`: NOTIFY a channel after commits, off the committing caller's path.

A NOTIFY inside a writing transaction holds PostgreSQL's global notify lock from before its commit
until the commit's WAL is flushed, so notifying writers commit one at a time. Rung after the
commit instead, the NOTIFY goes in a transaction of its own that writes nothing (no WAL flush to
wait for), in the background: the caller's answer never waits for it. Rings while one is under
way are folded into one more afterwards, so the listeners always hear of the latest commit.

Listeners also wake on a timeout (``Notifier.wait``), so a lost ring costs latency, never
correctness.
"""

from __future__ import annotations

import asyncio
import logging

from psycopg_pool import AsyncConnectionPool

log = logging.getLogger(__name__)


class Doorbell:
    def __init__(self, pool: AsyncConnectionPool, channel: str) -> None:
        self._pool = pool
        self._channel = channel
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def ring(self) -> None:
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._again = False
        self._task = asyncio.create_task(self._send(), name=f"notify-{self._channel}")

    async def _send(self) -> None:
        while True:
            try:
                # The pool's connection block commits on leaving it.
                async with self._pool.connection() as conn:
                    await conn.execute("SELECT pg_notify(%s, '')", (self._channel,))
            except Exception as exc:  # the listeners' timeout covers a lost ring
                log.debug("NOTIFY %s failed: %s", self._channel, exc)
            if not self._again:
                return
            self._again = False
