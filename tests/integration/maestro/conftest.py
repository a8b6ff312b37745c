"""Fixtures for Maestro's storage tests.

`pg_dsn` (a fresh database per test) comes from the shared session environment in
tests/conftest.py; `migrated_dsn` is that database with the schema, `store` a `Store` on it.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest

from maestro.storage import migrations, pool, store

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
