"""Fixtures for Maestro's storage tests.

`pg_dsn` (a fresh database per test) comes from the shared session environment in
tests/conftest.py; `migrated_dsn` is that database with the schema, `store` a `Store` on it.
"""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from localinfra import ports
from maestro.client import MaestroClient
from maestro.server import app
from maestro.server.settings import ServerSettings
from maestro.storage import migrations, pool, store
from maestro.transport import layout

_counter = itertools.count()


@pytest.fixture
async def migrated_dsn(pg_dsn: str) -> str:
    await migrations.migrate(pg_dsn)
    return pg_dsn


@pytest.fixture
async def maestro_store(migrated_dsn: str) -> AsyncIterator[store.Store]:
    opened = await pool.open_pool(migrated_dsn, min_size=1, max_size=4)
    try:
        yield store.Store(opened)
    finally:
        await opened.close()


@dataclasses.dataclass
class MaestroUnderTest:
    running: app.Running
    settings: ServerSettings

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.running.port}"


@pytest.fixture
async def maestro_server(pg_dsn: str, kafka_bootstrap: str) -> AsyncIterator[MaestroUnderTest]:
    """A server replica on a fresh database, with Kafka topics of its own (tests never share events)."""
    settings = ServerSettings(
        dsn=pg_dsn,
        kafka=kafka_bootstrap,
        port=ports.free_port(),
        topics=layout.Layout(f"test.{uuid.uuid4().hex[:10]}"),
        deletion_grace=timedelta(seconds=3),
        heartbeat_seconds=1.0,
        server_id="maestro-test",
    )
    running = await app.start(settings)
    try:
        yield MaestroUnderTest(running, settings)
    finally:
        await running.stop()


@pytest.fixture
async def source_client(maestro_server: MaestroUnderTest) -> AsyncIterator[MaestroClient]:
    async with MaestroClient(maestro_server.address, source="test-source") as client:
        yield client
