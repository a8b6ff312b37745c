"""A small plain HTTP port of a replica, for probes and scrapers that cannot speak the gRPC port's
mutual TLS: each caller gives the paths it answers."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.Response]]


async def serve(routes: Mapping[str, Handler], host: str, port: int) -> tuple[web.AppRunner, int]:
    """Answer GET on each path of ``routes``; returns the runner (to clean up) and the bound port
    (``port`` 0: a free one)."""
    app = web.Application()
    for path, handler in routes.items():
        app.router.add_get(path, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    bound = int(runner.addresses[0][1])
    log.info("serving %s on http://%s:%d", ", ".join(routes), host, bound)
    return runner, bound
