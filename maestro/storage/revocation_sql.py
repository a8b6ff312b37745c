"""Revoked certificate serials; `store.Store` runs each inside a transaction it owns."""

from __future__ import annotations

import psycopg

from maestro.api import revocations

# Wakes every replica's revocation list when a serial is revoked.
REVOCATION_CHANNEL = "maestro_revocations"


async def revoke(conn: psycopg.AsyncConnection, serial: int, reason: str, by: str) -> revocations.Revocation:
    """Revoke ``serial`` (revoking it again keeps the first record)."""
    text = revocations.serial_text(serial)
    await conn.execute(
        "INSERT INTO revoked_certificates (serial, reason, revoked_by) VALUES (%s, %s, %s)"
        " ON CONFLICT (serial) DO NOTHING",
        (text, reason, by),
    )
    await conn.execute("SELECT pg_notify(%s, %s)", (REVOCATION_CHANNEL, text))
    cur = await conn.execute(
        "SELECT serial, reason, revoked_by, revoked_at FROM revoked_certificates WHERE serial = %s", (text,)
    )
    row = await cur.fetchone()
    assert row is not None
    return _revocation(row)


async def list_all(conn: psycopg.AsyncConnection) -> list[revocations.Revocation]:
    cur = await conn.execute(
        "SELECT serial, reason, revoked_by, revoked_at FROM revoked_certificates ORDER BY revoked_at, serial"
    )
    return [_revocation(row) for row in await cur.fetchall()]


def _revocation(row: tuple[str, str, str, object]) -> revocations.Revocation:
    serial, reason, by, at = row
    return revocations.Revocation(int(serial, 16), reason, by, at)  # type: ignore[arg-type]
