"""A call the database could not serve ends UNAVAILABLE ("send it again"), as gRPC clients and
retry policies expect, rather than UNKNOWN with an exception's text."""

from __future__ import annotations

import grpc

from maestro.storage import pool


async def abort_if_store_away(context: grpc.aio.ServicerContext, exc: BaseException) -> None:
    """Abort the call UNAVAILABLE when ``exc`` is the database failing (`pool.unavailable`);
    return otherwise, for the caller to raise ``exc`` on."""
    away = pool.unavailable(exc)
    if away is not None:
        await context.abort(grpc.StatusCode.UNAVAILABLE, str(away))
