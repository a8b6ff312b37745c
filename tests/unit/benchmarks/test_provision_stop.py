"""A benchmark stopped while it starts a component: the start ends before the run stops."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from benchmarks import provision


async def test_a_start_cancelled_half_way_ends_before_the_cancellation_passes_on() -> None:
    began, ended = threading.Event(), threading.Event()

    def start(name: str, *, delay: float) -> str:
        began.set()
        time.sleep(delay)
        ended.set()
        return name

    task = asyncio.create_task(provision.starting(start, "kafka", delay=0.3))
    assert await asyncio.to_thread(began.wait, 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert ended.is_set()  # what it launched is recorded: the run's teardown stops it


async def test_a_start_not_cancelled_returns_what_it_started() -> None:
    assert await provision.starting(lambda name: name, "etcd") == "etcd"
