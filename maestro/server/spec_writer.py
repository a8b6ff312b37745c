"""Group commit for spec changes: concurrent Publish calls share one transaction.

Each Publish waits for its own result (stored, or the error that refused it, which becomes its
gRPC status); while one batch commits, the next one gathers. Under load a transaction carries
hundreds of changes with one round trip per statement kind instead of several per change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from maestro.api import bundles, errors
from maestro.storage import store as store_mod

log = logging.getLogger(__name__)

_Item = tuple[bundles.SpecRequest, "asyncio.Future[store_mod.SpecResult]"]


class SpecWriter:
    def __init__(self, store: store_mod.Store, *, max_batch: int = 500, writers: int = 2) -> None:
        self._store = store
        self._max_batch = max_batch
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        self._writers = writers
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._run(), name=f"spec-writer-{i}") for i in range(self._writers)
        ]

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        return list(self._tasks)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def submit(self, request: bundles.SpecRequest) -> store_mod.SpecResult:
        future: asyncio.Future[store_mod.SpecResult] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((request, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                results = await self._store.apply_specs([request for request, _ in batch])
            except Exception as exc:  # the whole transaction failed: every caller gets the error
                log.exception("spec batch of %d failed", len(batch))
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, errors.MaestroError):
                    future.set_exception(result)
                else:
                    future.set_result(result)
