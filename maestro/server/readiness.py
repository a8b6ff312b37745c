"""Whether a replica does all its work, told to the gRPC health service and to plain HTTP probes.

A replica whose background loop (outbox relay, status ingest, reaper...) has ended still answers
calls but no longer moves work: every service it registers with the gRPC health service turns
NOT_SERVING and ``/readyz`` answers 503 naming the loop. The HTTP endpoints serve on a port of their
own because the gRPC port requires a client certificate, which a kubelet probe cannot present.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web
from grpc_health.v1 import health, health_pb2

from maestro.server import http_port

log = logging.getLogger(__name__)

# A readiness probe must answer within the kubelet's timeout (1s by default) even when the
# database does not.
DATABASE_TIMEOUT = 0.8


class Readiness:
    def __init__(
        self,
        servicer: health.aio.HealthServicer,
        services: Iterable[str],
        ping_database: Callable[[], Awaitable[object]],
    ) -> None:
        self._servicer = servicer
        self._services = tuple(services)
        self._ping_database = ping_database
        self._stopped: dict[str, str] = {}
        self._stopping = False
        self._marking: set[asyncio.Task[None]] = set()

    @property
    def stopped_loops(self) -> dict[str, str]:
        """Each loop that ended while the replica runs, and why."""
        return dict(self._stopped)

    async def serving(self) -> None:
        await self._mark(health_pb2.HealthCheckResponse.SERVING)

    def watch(self, tasks: Iterable[asyncio.Task[None]]) -> None:
        """Loops that run until the replica stops: any of them ending makes it unready for good."""
        for task in tasks:
            task.add_done_callback(self._loop_ended)

    def stopping(self) -> None:
        """The replica is shutting down: its loops end on purpose from now on."""
        self._stopping = True

    def _loop_ended(self, task: asyncio.Task[None]) -> None:
        if self._stopping:
            return
        error = None if task.cancelled() else task.exception()
        cause = "cancelled" if task.cancelled() else repr(error) if error else "returned"
        self._stopped[task.get_name()] = cause
        log.critical(
            "background loop %s stopped (%s): this replica no longer does its work and reports NOT_SERVING",
            task.get_name(),
            cause,
            exc_info=error,
        )
        marking = asyncio.get_running_loop().create_task(
            self._mark(health_pb2.HealthCheckResponse.NOT_SERVING), name="health-not-serving"
        )
        self._marking.add(marking)
        marking.add_done_callback(self._marking.discard)

    async def _mark(self, status: health_pb2.HealthCheckResponse.ServingStatus.ValueType) -> None:
        for service in self._services:
            await self._servicer.set(service, status)

    async def problems(self) -> list[str]:
        """What keeps this replica from being ready; empty when it is."""
        found = [f"background loop {name} stopped: {cause}" for name, cause in self._stopped.items()]
        try:
            async with asyncio.timeout(DATABASE_TIMEOUT):
                await self._ping_database()
        except Exception as exc:  # any failure to answer means the database is not reachable
            found.append(f"database unreachable: {exc!r}")
        return found


async def _healthz(_: web.Request) -> web.Response:
    # Answering at all shows the event loop turns: that is what liveness asks.
    return web.Response(text="ok\n")


def routes(readiness: Readiness) -> dict[str, http_port.Handler]:
    """``/healthz`` (liveness) and ``/readyz`` (readiness: 503 with one line per problem)."""

    async def readyz(_: web.Request) -> web.Response:
        problems = await readiness.problems()
        if problems:
            return web.Response(status=503, text="".join(f"{p}\n" for p in problems))
        return web.Response(text="ready\n")

    return {"/healthz": _healthz, "/readyz": readyz}
