"""Follows stored status changes for one stream (a source's Subscribe or a WatchStatus call).

Changes are read from PostgreSQL after a resume token, so every replica serves every stream and a
reconnecting client misses nothing; a NOTIFY wakes the reader, a timeout bounds a lost one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from maestro.api import bundles, queries
from maestro.server.notifier import Notifier
from maestro.storage import store as store_mod


async def follow_batches(
    store: store_mod.Store,
    notifier: Notifier,
    token: str,
    where: queries.ResourceFilter,
    *,
    idle: float = 1.0,
    page: int = 500,
) -> AsyncIterator[list[bundles.StatusChange]]:
    """Yield the changes after ``token`` forever, as read (up to ``page`` at a time); yield an
    empty list when idle (time for a heartbeat)."""
    while True:
        changes = await store.status_changes_since(token, where, page)
        if changes:
            token = queries.resume_token(changes[-1].rev)
            yield changes
        if len(changes) < page:
            await notifier.wait(store_mod.STATUS_CHANNEL, idle)
            yield []


async def follow(
    store: store_mod.Store,
    notifier: Notifier,
    token: str,
    where: queries.ResourceFilter,
    *,
    idle: float = 1.0,
    page: int = 500,
) -> AsyncIterator[bundles.StatusChange | None]:
    """Yield each change after ``token`` forever; yield ``None`` when idle (time for a heartbeat)."""
    async for changes in follow_batches(store, notifier, token, where, idle=idle, page=page):
        for change in changes:
            yield change
        if not changes:
            yield None
