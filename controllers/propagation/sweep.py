"""The sweep of orphaned works: works (and mirrors) of ApplicationSets that are gone or no longer
opted in, which the finalizer could not delete (the label removed, the finalizer removed by hand).

Run every resync by ``controllers.propagation.controller`` (``PropagationController.sweep``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable

from controllers.propagation import ownership, plan
from controllers.propagation.works_and_mirrors import WorksAndMirrors
from controllers.status import book
from maestro.api import listing, queries

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class OwnedWork:
    """What the sweep needs of a work: where it is, and whether its deletion already started."""

    cluster: str
    work_id: str
    deleting: bool


async def works_by_owner(io: WorksAndMirrors) -> dict[book.AppSetKey, list[OwnedWork]]:
    """Every work of the source, by the ApplicationSet it names as its owner."""
    # Every work of the source, each minute: page by page, asking only for the metadata (reading
    # 150,000 specs and statuses to find the few orphans would dwarf the sweep's use).
    owners: dict[book.AppSetKey, list[OwnedWork]] = {}
    async for page in io.maestro.pages(
        queries.ResourceFilter(source=io.source), with_spec=False, with_status=False
    ):
        for item in page.items:
            key = ownership.owner(item.metadata())
            if key is not None:
                deleting = item.deletion is listing.DeletionState.DELETING
                owners.setdefault(key, []).append(OwnedWork(item.consumer, item.id, deleting))
        await asyncio.sleep(0)
    return owners


async def sweep(
    io: WorksAndMirrors,
    *,
    served: Callable[[book.AppSetKey], bool],
    lock: Callable[[book.AppSetKey], asyncio.Lock],
) -> int:
    """Delete the works of every ApplicationSet that is gone or opted out and not ``served`` by a
    daemon (under its ``lock``), and the mirrors of those opted out; the works deleted."""
    deleted = 0
    for key, owned in (await works_by_owner(io)).items():
        if served(key):
            continue  # a daemon serves it
        body = await io.hub.get_application_set(*key)
        if body is not None and plan.is_pull_enabled(body):
            continue  # its daemon is starting, or its finalizer is running
        async with lock(key):
            for work in owned:
                if not work.deleting:
                    await io.delete_work(work.cluster, work.work_id)
                    deleted += 1
            if body is not None:  # opted out: its mirrors would otherwise stay until it is deleted
                for mirror in await io.hub.list_application_metadata(key[0], ownership.owner_labels(*key)):
                    await io.delete_mirror(key[0], mirror["metadata"]["name"])
        log.info("ApplicationSet %s/%s is gone or opted out: deleting its %d works", *key, len(owned))
    return deleted
