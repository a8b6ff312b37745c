"""A replica's readiness without a server: a loop that raises or returns is named with its cause and
turns every registered health service NOT_SERVING; loops ended by shutting down are not; an
unreachable database is a problem too, reported within the probe's time."""

from __future__ import annotations

import asyncio

import pytest
from grpc_health.v1 import health, health_pb2

from maestro.server import readiness as readiness_mod
from maestro.server.readiness import Readiness

SERVICES = ("", "maestro.Query")


async def reachable() -> None:
    return None


async def statuses(servicer: health.aio.HealthServicer) -> dict[str, int]:
    replies = {}
    for service in SERVICES:
        request = health_pb2.HealthCheckRequest(service=service)
        replies[service] = (await servicer.Check(request, None)).status  # type: ignore[arg-type]
    return replies


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_loop_that_raises_or_returns_is_named_and_turns_every_service_not_serving() -> None:
    servicer = health.aio.HealthServicer()
    readiness = Readiness(servicer, SERVICES, reachable)
    await readiness.serving()
    assert await statuses(servicer) == dict.fromkeys(SERVICES, health_pb2.HealthCheckResponse.SERVING)
    assert await readiness.problems() == []

    async def fails() -> None:
        raise RuntimeError("broker gone")

    async def returns() -> None:
        return None

    readiness.watch(
        [asyncio.create_task(fails(), name="relay"), asyncio.create_task(returns(), name="reaper")]
    )
    await settle()

    assert readiness.stopped_loops == {"relay": "RuntimeError('broker gone')", "reaper": "returned"}
    assert await statuses(servicer) == dict.fromkeys(SERVICES, health_pb2.HealthCheckResponse.NOT_SERVING)
    assert await readiness.problems() == [
        "background loop relay stopped: RuntimeError('broker gone')",
        "background loop reaper stopped: returned",
    ]


async def test_loops_cancelled_by_shutting_down_leave_the_replica_as_it_was() -> None:
    servicer = health.aio.HealthServicer()
    readiness = Readiness(servicer, SERVICES, reachable)
    await readiness.serving()
    loop = asyncio.create_task(asyncio.sleep(60), name="relay")
    readiness.watch([loop])  # type: ignore[list-item]
    readiness.stopping()
    loop.cancel()
    await settle()
    assert readiness.stopped_loops == {}
    assert await statuses(servicer) == dict.fromkeys(SERVICES, health_pb2.HealthCheckResponse.SERVING)


async def test_a_database_that_does_not_answer_in_time_is_a_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    async def hangs() -> None:
        await asyncio.sleep(60)

    monkeypatch.setattr(readiness_mod, "DATABASE_TIMEOUT", 0.05)
    problems = await Readiness(health.aio.HealthServicer(), SERVICES, hangs).problems()
    assert len(problems) == 1 and problems[0].startswith("database unreachable: TimeoutError")
