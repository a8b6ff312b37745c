"""Versioned schema migrations (`NNNN_name.sql` beside this file) and `migrate`, which applies them.

Run by `maestro migrate` and by every server replica at start; safe when several start at once.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import re

import psycopg

# Any fixed key will do; it only has to differ from other advisory locks in this database.
MIGRATION_LOCK = 0x6D61_6573_7472_6F01  # "maestro" + 1
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS maestro_schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclasses.dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    """The migration files shipped with this package, in version order."""
    found = []
    for entry in importlib.resources.files(__name__).iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions in {versions}")
    return found


async def migrate(dsn: str) -> list[int]:
    """Apply every migration not applied yet, each in its own transaction; returns the versions applied.

    A session advisory lock serialises concurrent callers: the second one waits, then finds
    nothing left to do.
    """
    applied_now: list[int] = []
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            await conn.execute(_CREATE_TABLE)
            cur = await conn.execute("SELECT version FROM maestro_schema_migrations")
            done = {row[0] for row in await cur.fetchall()}
            for migration in available():
                if migration.version in done:
                    continue
                async with conn.transaction():
                    # No parameters: psycopg sends the file as one simple query, many statements.
                    await conn.execute(migration.sql.encode())
                    await conn.execute(
                        "INSERT INTO maestro_schema_migrations (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name),
                    )
                applied_now.append(migration.version)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    return applied_now
