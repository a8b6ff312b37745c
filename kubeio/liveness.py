"""The operators' liveness endpoint: plain HTTP, answered for as long as the process runs.

kopf serves one only while it runs, and a standby replica runs no kopf: the kubelet would restart
it forever. This one answers from the start, leader or standby, with which of the two it is.
"""

from __future__ import annotations

import contextlib
import urllib.parse
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web


def address(endpoint: str) -> tuple[str, int, str]:
    """Host, port and path of an endpoint such as ``http://0.0.0.0:8080/healthz``."""
    parts = urllib.parse.urlsplit(endpoint)
    if parts.scheme != "http" or not parts.hostname or parts.port is None:
        raise ValueError(
            f"{endpoint!r} is not an http URL with a host and a port: give one such as "
            "http://0.0.0.0:8080/healthz"
        )
    return parts.hostname, parts.port, parts.path or "/"


@contextlib.asynccontextmanager
async def serving(endpoint: str | None, state: Callable[[], dict[str, Any]]) -> AsyncIterator[None]:
    """Answer GET on ``endpoint`` with 200 and ``state()`` as JSON while the block runs."""
    if not endpoint:
        yield
        return
    host, port, path = address(endpoint)

    async def live(_: web.Request) -> web.Response:
        reply = web.json_response(state())
        # one probe, one connection: a kept-alive one would outlive the operator's shutdown
        reply.force_close()
        return reply

    app = web.Application()
    app.router.add_get(path, live)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        yield
    finally:
        await runner.cleanup()
