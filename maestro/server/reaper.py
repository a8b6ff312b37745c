"""Finishes deletions whose agent never confirmed them (the orphan policy).

Upstream's deletes hang forever when an agent is gone; here a bundle soft-deleted for longer than
the grace period is hard-deleted and its source sees it go. What the agent applied is orphaned on
its cluster; the server log names each bundle so an operator can clean up.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from maestro.storage import store as store_mod

log = logging.getLogger(__name__)


class DeletionReaper:
    def __init__(self, store: store_mod.Store, grace: timedelta) -> None:
        self._store = store
        self._grace = grace
        self.orphaned = 0

    @property
    def period(self) -> float:
        return max(0.5, min(30.0, self._grace.total_seconds() / 4))

    async def run(self) -> None:
        while True:
            try:
                await self.reap_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("deletion reaper failed; retrying")
            await asyncio.sleep(self.period)

    async def reap_once(self) -> int:
        expired = await self._store.expired_deletions(self._grace)
        if not expired:
            return 0
        for bundle in expired:
            log.warning(
                "bundle %s on %s was not confirmed deleted within %s: orphaned",
                bundle.id,
                bundle.consumer,
                self._grace,
            )
        await self._store.hard_delete([b.id for b in expired])
        self.orphaned += len(expired)
        return len(expired)
