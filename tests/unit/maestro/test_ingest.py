"""The status ingester keeps a batch it could not store: its consumer position is already past it.

Case: storing a batch fails (the database is away); the same batch is handled again until it is
stored, and only then committed; the loop goes on with the next batch.
"""

from __future__ import annotations

import asyncio
import contextlib

from maestro.server.ingest import StatusIngester
from maestro.transport import clients
from tests.unit.maestro.kafkafakes import RecordingReader


def incoming(offset: int) -> clients.Incoming:
    return clients.Incoming("t.status", 0, offset, "c1", {}, None, b"{}")


async def test_a_batch_that_failed_to_store_is_handled_again_then_committed() -> None:
    first, second = [incoming(0), incoming(1)], [incoming(2)]
    reader = RecordingReader([first, second])
    ingester = StatusIngester(None, reader, None, "s1", topic="t.status")  # type: ignore[arg-type]
    handled: list[list[int]] = []

    async def handle(messages: list[clients.Incoming]) -> None:
        handled.append([m.offset for m in messages])
        if len(handled) == 1:
            raise ConnectionError("database went away")

    ingester.handle = handle  # type: ignore[method-assign]
    task = asyncio.create_task(ingester.run())
    try:
        for _ in range(200):
            if len(reader.committed) == 2:
                break
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert handled == [[0, 1], [0, 1], [2]]
    assert [[m.offset for m in batch] for batch in reader.committed] == [[0, 1], [2]]
