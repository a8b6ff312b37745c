"""Finishes deletions whose agent never confirmed them (the orphan policy).

Upstream's deletes hang forever when an agent is gone; here a bundle soft-deleted for longer than
the grace period gets a final status of our own (``Deleted=True``, reason ``Orphaned``, saying what
may be left on the cluster), then is hard-deleted, so its source sees why it went. The server log
names each bundle too, so an operator can clean up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta

from maestro.api import bundles
from maestro.storage import store as store_mod

ORPHANED = "Orphaned"

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
        await self._store.ingest_statuses([self._orphaned(b) for b in expired])
        await self._store.hard_delete([b.id for b in expired])
        self.orphaned += len(expired)
        return len(expired)

    def _orphaned(self, bundle: bundles.ResourceBundle) -> bundles.StatusReport:
        message = (
            f"the agent of {bundle.consumer} did not confirm the deletion within {self._grace}; "
            f"what it applied may still be on the cluster"
        )
        condition = {
            "type": "Deleted",
            "status": "True",
            "reason": ORPHANED,
            "message": message,
            "lastTransitionTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        }
        # A sequence above any the agent sent (its ids are nanosecond clocks too).
        status = bundles.BundleStatus(conditions=[condition], sequence_id=time.time_ns())
        return bundles.StatusReport(bundle.id, bundle.consumer, bundle.version, status, bundle.source, "")
