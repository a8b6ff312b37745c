"""The connection pool every `Store` runs on, with JSON handled by orjson.

Opened once per process by the server (and by tests) and closed at shutdown.
"""

from __future__ import annotations

import orjson
import psycopg
from psycopg.types import json as pg_json
from psycopg_pool import AsyncConnectionPool

from maestro.api import errors


async def _configure(conn: psycopg.AsyncConnection) -> None:
    # orjson is several times faster than the json module on the large spec documents we list.
    pg_json.set_json_loads(orjson.loads, conn)
    pg_json.set_json_dumps(orjson.dumps, conn)


async def open_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 10, name: str = "maestro"
) -> AsyncConnectionPool:
    pool = AsyncConnectionPool(
        dsn, min_size=min_size, max_size=max_size, open=False, configure=_configure, name=name
    )
    await pool.open(wait=True)
    return pool


def unavailable(exc: BaseException) -> errors.Unavailable | None:
    """What a database failure is to a caller, or None when ``exc`` is none: the server away or
    restarting, a connection it dropped, no connection free in time (psycopg_pool's PoolTimeout is
    an OperationalError too), a transaction that lost a conflict. The same call may succeed if sent
    again. Only the error's kind is named: its text may hold the database's address."""
    if isinstance(exc, psycopg.OperationalError):
        return errors.Unavailable(
            f"the database could not serve the call now ({type(exc).__name__})", "send the call again"
        )
    return None
