"""Watches what the agent applied, so a status change reaches the server when it happens.

One list-and-watch (``kubeio.watch.follow``) per (resource, namespace) that holds a recorded
manifest — an Argo CD Application's sync status, a Deployment's replicas — and ``on_change`` is told
which bundles an event touched. The agent re-reads those bundles' objects and publishes only if
their status changed, so an object that changes often does not flood the server. ReadOnly manifests
are watched too (the watch is by namespace, not by our marker label). A relist (after an expired
watch or a lost connection) names every bundle of that collection: what changed meanwhile is seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from kubeio import watch
from kubeio.rest import KubeRest
from maestro.agent.manifests import ObjectRef
from maestro.agent.records import AppliedRecord

log = logging.getLogger(__name__)

# (group, version, resource, namespace): one watched collection
Collection = tuple[str, str, str, str]
OnChange = Callable[[set[str]], None]


def collection_path(collection: Collection) -> str:
    group, version, resource, namespace = collection
    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    return f"{base}/namespaces/{namespace}/{resource}" if namespace else f"{base}/{resource}"


def index(records: Iterable[AppliedRecord]) -> dict[Collection, dict[str, set[str]]]:
    """Which bundles hold each object, by collection and name."""
    out: dict[Collection, dict[str, set[str]]] = {}
    for record in records:
        for meta in record.manifests:
            ref: ObjectRef = meta.ref
            if not ref.resource or not ref.name:
                continue  # a manifest that never resolved to a served kind: nothing to watch
            names = out.setdefault((ref.group, ref.version, ref.resource, ref.namespace), {})
            names.setdefault(ref.name, set()).add(record.resource_id)
    return out


class AppliedObjectWatcher:
    def __init__(self, rest: KubeRest, on_change: OnChange, *, timeout_seconds: int = 300) -> None:
        self.rest = rest
        self.on_change = on_change
        self.timeout_seconds = timeout_seconds
        self._index: dict[Collection, dict[str, set[str]]] = {}
        self._tasks: dict[Collection, asyncio.Task[None]] = {}

    @property
    def collections(self) -> set[Collection]:
        return set(self._tasks)

    def follow(self, records: Iterable[AppliedRecord]) -> None:
        """Watch exactly the collections these records' objects live in (called after each change
        to the records; starting and stopping watches is all it does)."""
        self._index = index(records)
        for collection in set(self._tasks) - set(self._index):
            self._tasks.pop(collection).cancel()
        for collection in set(self._index) - set(self._tasks):
            self._tasks[collection] = asyncio.create_task(
                self._run(collection), name=f"watch {collection_path(collection)}"
            )

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, collection: Collection) -> None:
        def listed(_: Sequence[dict[str, Any]]) -> None:
            # Everything held in this collection, present or not: a deletion shows as absence.
            touched = set().union(*self._index.get(collection, {}).values())
            if touched:
                self.on_change(touched)

        def changed(_: str, obj: dict[str, Any]) -> None:
            name = str((obj.get("metadata") or {}).get("name") or "")
            touched = self._index.get(collection, {}).get(name)
            if touched:
                self.on_change(set(touched))

        await watch.follow(
            self.rest, collection_path(collection), listed, changed, timeout_seconds=self.timeout_seconds
        )
