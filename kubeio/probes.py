"""What every long-running process shows the kubelet and Prometheus: a plain HTTP port with
``/healthz``, ``/readyz`` and ``/metrics``.

The Maestro server, the agent and the kopf operators share it. Ports are plain HTTP, on their own
listeners, because the processes' gRPC ports require a client certificate, which neither a kubelet
probe nor a scraper presents; what they answer reveals no stored data.

``Readiness`` tells whether a process does all its work: every background loop it watches runs
(one that ends, raises or is cancelled from outside makes the process unready for good, naming the
loop and why) and every check passes within ``timeout``. ``/healthz`` answers as long as the event
loop turns: a restart is the kubelet's call, taken on liveness alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.Response]]
#: one condition of readiness: returns why it does not hold (None: it does), or raises
Check = Callable[[], Awaitable[str | None]]

#: where a port listens unless told otherwise: nothing listens on a network a user did not choose
LOOPBACK = "127.0.0.1"
# A readiness probe must answer within the kubelet's timeout (1s by default) even when what a check
# asks (a database, say) does not.
CHECK_TIMEOUT = 0.8


async def serve(routes: Mapping[str, Handler], host: str, port: int) -> tuple[web.AppRunner, int]:
    """Answer GET on each path of ``routes``; returns the runner (to clean up) and the bound port
    (``port`` 0: a free one)."""
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_get(path, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        what = f"cannot serve {', '.join(routes)} on {host}:{port}: {exc.strerror}"
        raise OSError(exc.errno, f"{what} (is the port in use?)") from exc
    bound = int(runner.addresses[0][1])
    log.info("serving %s on http://%s:%d", ", ".join(routes), host, bound)
    return runner, bound


@contextlib.asynccontextmanager
async def serving(routes: Mapping[str, Handler], host: str, port: int | None) -> AsyncIterator[int | None]:
    """``serve`` for the life of the block; ``port`` None serves nothing (and yields None)."""
    if port is None:
        yield None
        return
    runner, bound = await serve(routes, host, port)
    try:
        yield bound
    finally:
        await runner.cleanup()


class Readiness:
    """The background loops a process watches and the checks it must pass to be ready.

    ``checks`` maps how a failure is named to the check: a check that raises (or times out) is
    reported as ``<name>: <error>``, one that returns a reason by that reason alone.
    ``on_loop_stopped`` runs (as a task) when a watched loop ends while the process is not stopping.
    """

    def __init__(
        self,
        checks: Mapping[str, Check] | None = None,
        *,
        timeout: float = CHECK_TIMEOUT,
        on_loop_stopped: Callable[[], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        self._checks = dict(checks or {})
        self._timeout = timeout
        self._on_loop_stopped = on_loop_stopped
        self._stopped: dict[str, str] = {}
        self._stopping = False
        self._reacting: set[asyncio.Task[None]] = set()

    @property
    def stopped_loops(self) -> dict[str, str]:
        """Each loop that ended while the process runs, and why."""
        return dict(self._stopped)

    def watch(self, tasks: Iterable[asyncio.Task[None]]) -> None:
        """Loops that run until the process stops: any of them ending makes it unready for good."""
        for task in tasks:
            task.add_done_callback(self._loop_ended)

    def unwatch(self, tasks: Iterable[asyncio.Task[None]]) -> None:
        """Loops about to end on purpose (a part of the process started again): forget them."""
        for task in tasks:
            task.remove_done_callback(self._loop_ended)

    def stopping(self) -> None:
        """The process is shutting down: its loops end on purpose from now on."""
        self._stopping = True

    def _loop_ended(self, task: asyncio.Task[None]) -> None:
        if self._stopping:
            return
        error = None if task.cancelled() else task.exception()
        cause = "cancelled" if task.cancelled() else repr(error) if error else "returned"
        self._stopped[task.get_name()] = cause
        log.critical(
            "background loop %s stopped (%s): this process no longer does all its work and is not ready",
            task.get_name(),
            cause,
            exc_info=error,
        )
        if self._on_loop_stopped is not None:
            reacting = asyncio.get_running_loop().create_task(self._on_loop_stopped(), name="loop-stopped")
            self._reacting.add(reacting)
            reacting.add_done_callback(self._reacting.discard)

    async def problems(self) -> list[str]:
        """What keeps this process from being ready; empty when it is."""
        found = [f"background loop {name} stopped: {cause}" for name, cause in self._stopped.items()]
        for name, check in self._checks.items():
            try:
                async with asyncio.timeout(self._timeout):
                    reason = await check()
            except Exception as exc:  # a check that cannot answer is a problem, named by its error
                found.append(f"{name}: {exc!r}")
            else:
                if reason:
                    found.append(reason)
        return found


async def _healthz(_: web.Request) -> web.Response:
    # Answering at all shows the event loop turns: that is what liveness asks.
    return web.Response(text="ok\n")


def health_routes(
    readiness: Readiness, *, standing_by: Callable[[], str | None] | None = None
) -> dict[str, Handler]:
    """``/healthz`` (liveness) and ``/readyz`` (readiness: 503 with one line per problem).

    ``standing_by`` says why a replica that is not elected leader does no work (None: it leads, or
    no election runs): such a replica answers ``/readyz`` with 200 and that line instead of its
    checks, which ask about work it does not do (it serves no traffic, and a rolling update waits
    for its new pods to be ready)."""

    async def readyz(_: web.Request) -> web.Response:
        note = standing_by() if standing_by is not None else None
        if note is not None:
            return web.Response(text=f"{note}\n")
        problems = await readiness.problems()
        if problems:
            return web.Response(status=503, text="".join(f"{p}\n" for p in problems))
        return web.Response(text="ready\n")

    return {"/healthz": _healthz, "/readyz": readyz}


def metrics_routes(registry: CollectorRegistry) -> dict[str, Handler]:
    """``/metrics``: the registry in Prometheus' text format."""

    async def scrape(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return {"/metrics": scrape}
