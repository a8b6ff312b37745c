"""Whether a replica does all its work, told to the gRPC health service and to plain HTTP probes.

A replica whose background loop (outbox relay, status ingest, reaper...) has ended still answers
calls but no longer moves work: every service it registers with the gRPC health service turns
NOT_SERVING and ``/readyz`` (``kubeio.probes``) answers 503 naming the loop. It is ready only while
the database answers, too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from grpc_health.v1 import health, health_pb2

from kubeio import probes

DATABASE_TIMEOUT = probes.CHECK_TIMEOUT


class Readiness(probes.Readiness):
    def __init__(
        self,
        servicer: health.aio.HealthServicer,
        services: Iterable[str],
        ping_database: Callable[[], Awaitable[object]],
    ) -> None:
        async def database() -> None:
            await ping_database()

        super().__init__(
            {"database unreachable": database},
            timeout=DATABASE_TIMEOUT,
            on_loop_stopped=self._not_serving,
        )
        self._servicer = servicer
        self._services = tuple(services)

    async def serving(self) -> None:
        await self._mark(health_pb2.HealthCheckResponse.SERVING)

    async def _not_serving(self) -> None:
        await self._mark(health_pb2.HealthCheckResponse.NOT_SERVING)

    async def _mark(self, status: health_pb2.HealthCheckResponse.ServingStatus.ValueType) -> None:
        for service in self._services:
            await self._servicer.set(service, status)
