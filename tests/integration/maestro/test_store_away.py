"""A call the database cannot serve fails UNAVAILABLE, and the same call is served once it is back.

The server's role is refused logins and its connections are ended (as a restarting PostgreSQL does
to them): a source's publish and a query then fail UNAVAILABLE, naming the database and saying to
send the call again (not UNKNOWN with the driver's exception, which a gRPC client's retry policy
would not retry); once logins are allowed again, the same publish is accepted.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from localinfra import postgres
from maestro import client_errors
from maestro.api import bundles
from maestro.client import MaestroClient
from tests.integration.maestro.conftest import MaestroUnderTest

pytestmark = pytest.mark.integration


def set_logins(pg: postgres.Postgres, role: str, *, allowed: bool) -> None:
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("ALTER ROLE {} " + ("LOGIN" if allowed else "NOLOGIN")).format(sql.Identifier(role))
        )
        if not allowed:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))


async def test_a_call_the_database_cannot_serve_fails_unavailable_until_it_is_back(
    maestro_server: MaestroUnderTest, source_client: MaestroClient, pg_server: postgres.Postgres, pg_dsn: str
) -> None:
    role = str(conninfo_to_dict(pg_dsn)["user"])
    await source_client.create_consumer("cluster-1")
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}}
    spec = bundles.ManifestBundle(manifests=[config_map])
    work = uuid.uuid4()
    await asyncio.to_thread(set_logins, pg_server, role, allowed=False)
    try:
        with pytest.raises(client_errors.Unavailable) as refused:
            await source_client.apply("cluster-1", work, spec)
        assert refused.value.code == "UNAVAILABLE", refused.value
        assert "the database could not serve the call now" in refused.value.details
        assert "send the call again" in refused.value.details
        with pytest.raises(client_errors.Unavailable) as listed:
            await source_client.list()
        assert listed.value.code == "UNAVAILABLE", listed.value
    finally:
        await asyncio.to_thread(set_logins, pg_server, role, allowed=True)
    # The pool connects again by itself: the same call, sent again as a source does, is accepted.
    deadline = time.monotonic() + 60
    while True:
        try:
            await source_client.apply("cluster-1", work, spec)
            break
        except client_errors.Unavailable as exc:
            assert time.monotonic() < deadline, f"still refused 60s after the database is back: {exc}"
            await asyncio.sleep(1)
    assert (await source_client.get(work)).bundle.version == 1
