"""The probe and metrics port every long-running process shares (``kubeio.probes``), over real HTTP
on loopback.

Cases: /healthz answers while the process lives; /readyz is 200 "ready" with nothing wrong, else 503
with one line per problem: a loop that raised, returned or was cancelled from outside (named, with
its cause), a check's own reason, a check that raised or did not answer in time (named by what it
checks); loops that end because the process stops leave it ready; the process's reaction to a
stopped loop runs; a replica standing by (not elected leader) is ready and says so, its checks
not asked, and once it leads its checks count; /metrics serves the process's own registry in
Prometheus' text format; no port asked for, nothing listens; a port in use is named.
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, Counter

from kubeio import probes


async def get(port: int, path: str) -> tuple[int, str, str]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        session.get(f"http://127.0.0.1:{port}{path}") as reply,
    ):
        return reply.status, reply.headers.get("Content-Type", ""), await reply.text()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_standby_is_ready_and_says_so_until_it_leads() -> None:
    asked: list[str] = []
    leading = [False]

    async def kopf() -> str | None:
        asked.append("kopf")
        return "starting: kopf's startup handlers have not finished"

    routes = probes.health_routes(
        probes.Readiness({"kopf": kopf}), standing_by=lambda: None if leading[0] else "standby: another leads"
    )
    async with probes.serving(routes, "127.0.0.1", 0) as port:
        assert port is not None
        assert (await get(port, "/readyz"))[::2] == (200, "standby: another leads\n")
        assert (await get(port, "/healthz"))[0] == 200
        assert asked == []
        leading[0] = True
        status, _, text = await get(port, "/readyz")
        assert (status, text) == (503, "starting: kopf's startup handlers have not finished\n")


async def test_readyz_names_each_stopped_loop_and_failing_check_while_healthz_answers() -> None:
    reasons: list[str | None] = [None]
    reacted: list[str] = []

    async def partition() -> str | None:
        return reasons[0]

    async def database() -> None:
        raise ConnectionError("refused")

    async def slow() -> None:
        await asyncio.sleep(60)

    async def react() -> None:
        reacted.append("not serving")

    healthy = probes.Readiness({"spec reader": partition}, on_loop_stopped=react)
    async with probes.serving(probes.health_routes(healthy), "127.0.0.1", 0) as port:
        assert port is not None
        assert (await get(port, "/readyz"))[::2] == (200, "ready\n")

        async def fails() -> None:
            raise RuntimeError("broker gone")

        async def returns() -> None:
            return None

        cancelled = asyncio.create_task(asyncio.sleep(60), name="refresh")
        healthy.watch(
            [
                asyncio.create_task(fails(), name="relay"),
                asyncio.create_task(returns(), name="reaper"),
                cancelled,  # type: ignore[list-item]
            ]
        )
        cancelled.cancel()
        reasons[0] = "waiting for its placement from Maestro"
        await settle()
        status, _, text = await get(port, "/readyz")
        assert status == 503
        assert sorted(text.splitlines()) == [
            "background loop reaper stopped: returned",
            "background loop refresh stopped: cancelled",
            "background loop relay stopped: RuntimeError('broker gone')",
            "waiting for its placement from Maestro",
        ]
        assert reacted == ["not serving"] * 3
        assert (await get(port, "/healthz"))[::2] == (200, "ok\n")

    checks = probes.Readiness({"database unreachable": database, "kafka": slow}, timeout=0.05)
    assert await checks.problems() == [
        "database unreachable: ConnectionError('refused')",
        "kafka: TimeoutError()",
    ]


async def test_loops_ended_by_stopping_leave_the_process_ready() -> None:
    readiness = probes.Readiness()
    loop = asyncio.create_task(asyncio.sleep(60), name="relay")
    readiness.watch([loop])  # type: ignore[list-item]
    readiness.stopping()
    loop.cancel()
    await settle()
    assert readiness.stopped_loops == {} and await readiness.problems() == []


async def test_metrics_serve_the_processs_own_registry() -> None:
    registry = CollectorRegistry()
    Counter("probe_test_things", "Things.", registry=registry).inc(3)
    async with probes.serving(probes.metrics_routes(registry), "127.0.0.1", 0) as port:
        assert port is not None
        status, content_type, text = await get(port, "/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    assert "probe_test_things_total 3.0" in text.splitlines()


async def test_no_port_no_listener() -> None:
    async with probes.serving(probes.metrics_routes(CollectorRegistry()), "127.0.0.1", None) as port:
        assert port is None


async def test_a_port_in_use_is_named() -> None:
    async with probes.serving(probes.metrics_routes(CollectorRegistry()), "127.0.0.1", 0) as port:
        with pytest.raises(OSError, match=rf"cannot serve /metrics on 127.0.0.1:{port}: .*in use"):
            async with probes.serving(probes.metrics_routes(CollectorRegistry()), "127.0.0.1", port):
                pass
