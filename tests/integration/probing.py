"""What the probe and metrics tests share: a ``fleetplane`` process of the session environment,
HTTP requests as a kubelet or a Prometheus scraper makes them, and a scrape's samples.

A process started here is recorded in the session environment while it runs, so a failing test's
report carries its log; it is stopped (TERM) when the block ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from localinfra import platform, process
from localinfra.environment import Environment

T = TypeVar("T")
#: every sample of a scrape, by name and sorted labels
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def http_get(port: int, path: str) -> tuple[int, str]:
    """Status and body of GET ``path`` on loopback, as a probe asks it."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        session.get(f"http://127.0.0.1:{port}{path}") as reply,
    ):
        return reply.status, await reply.text()


async def answers(port: int, path: str) -> tuple[int, str] | None:
    """``http_get``, or None while nothing listens."""
    try:
        return await http_get(port, path)
    except aiohttp.ClientConnectionError:
        return None


async def scrape(port: int) -> Samples:
    status, text = await http_get(port, "/metrics")
    assert status == 200, text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the scrape has none."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def label_values(samples: Samples) -> set[str]:
    return {label for _, labels in samples for _, label in labels}


async def eventually(
    check: Callable[[], Awaitable[T | None]], what: str, timeout: float = 20, log: Path | None = None
) -> T:
    """``check()`` until it is truthy; fails naming ``what`` (and with the log's tail) if it never is."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = await check()
        if found:
            return found
        if loop.time() > deadline:
            tail = f"\n{process.log_tail(log, 40)}" if log is not None else ""
            pytest.fail(f"{what}: not within {timeout}s (last: {found!r}){tail}")
        await asyncio.sleep(0.25)


@contextlib.asynccontextmanager
async def fleetplane(env: Environment, name: str, args: Sequence[str], log: Path) -> AsyncIterator[None]:
    """``fleetplane ARGS`` running as process ``name`` of ``env`` for the block."""
    env.add_process(process.spawn(name, platform.fleetplane_argv(*args), log))
    try:
        yield
    finally:
        await asyncio.to_thread(env.stop_process, name)
