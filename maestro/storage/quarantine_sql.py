"""Quarantined events (`maestro.api.quarantine`); `store.Store` runs each inside a transaction it
owns. Spec events move here from the outbox after too many refusals; status events are added by the
ingester."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from psycopg import sql

from maestro.api import quarantine
from maestro.storage.resource_sql import OUTBOX_CHANNEL

_COLUMNS = (
    "id, kind, consumer, resource_id, event_type, topic, reason, attempts, created_at, quarantined_at, "
    "kafka_partition, kafka_offset, COALESCE(octet_length(payload), 0)"
)

# Delete what Kafka acknowledged, count each refusal against its row, move the rows refused too
# often to the quarantine, and give back this relay's leases: one statement, one round trip.
_SETTLE = """
WITH refusal AS (
    SELECT * FROM unnest(%(refused)s::bigint[], %(reasons)s::text[]) AS r(id, reason)
), acked AS (
    DELETE FROM outbox WHERE id = ANY(%(acked)s)
), counted AS (
    UPDATE outbox o SET attempts = o.attempts + 1, last_error = r.reason
    FROM refusal r WHERE o.id = r.id AND o.attempts + 1 < %(limit)s
), moved AS (
    DELETE FROM outbox o USING refusal r
    WHERE o.id = r.id AND o.attempts + 1 >= %(limit)s
    RETURNING o.consumer, o.resource_id, o.event_type, o.payload, o.created_at, o.attempts + 1 AS tried,
              r.reason
), quarantined AS (
    INSERT INTO quarantine
        (kind, consumer, resource_id, event_type, topic, payload, reason, attempts, created_at)
    SELECT 'spec', m.consumer, m.resource_id, m.event_type, c.spec_topic, m.payload, m.reason, m.tried,
           m.created_at
    FROM moved m JOIN consumers c ON c.name = m.consumer
    RETURNING id
), released AS (
    UPDATE consumers SET relay_owner = NULL, relay_lease_until = NULL WHERE relay_owner = %(owner)s
)
SELECT count(*) FROM quarantined
"""


async def settle_outbox(
    conn: psycopg.AsyncConnection,
    acked: Sequence[int],
    refused: Sequence[tuple[int, str]],
    owner: str,
    attempts: int,
) -> int:
    """Settle a relayed batch; returns how many refused rows were quarantined."""
    cur = await conn.execute(
        _SETTLE,
        {
            "acked": list(acked),
            "refused": [i for i, _ in refused],
            "reasons": [quarantine.printable(reason) for _, reason in refused],
            "limit": attempts,
            "owner": owner,
        },
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def add_status(conn: psycopg.AsyncConnection, held: Sequence[quarantine.StatusMessage]) -> None:
    if not held:
        return
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO quarantine (kind, consumer, resource_id, event_type, topic, kafka_partition, "
            "kafka_offset, message_key, headers, payload, reason, attempts, created_at) "
            "VALUES ('status', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())",
            [
                (
                    h.consumer,
                    h.resource_id,
                    quarantine.printable(h.event_type, 200),
                    quarantine.printable(h.topic, 300),
                    h.partition,
                    h.offset,
                    h.key,
                    h.headers,
                    h.payload,
                    quarantine.printable(h.reason),
                    h.attempts,
                )
                for h in held
            ],
        )


def _where(
    selection: quarantine.Selection, kind: quarantine.Kind | None = None
) -> tuple[sql.Composable, dict[str, object]]:
    conditions: list[sql.Composable] = [sql.SQL("kind = ANY(%(kinds)s)")]
    kinds = {k.value for k in selection.kinds}
    if kind is not None:
        kinds &= {kind.value}
    params: dict[str, object] = {"kinds": sorted(kinds)}
    if selection.ids:
        conditions.append(sql.SQL("id = ANY(%(ids)s)"))
        params["ids"] = list(selection.ids)
    if selection.consumer:
        conditions.append(sql.SQL("consumer = %(consumer)s"))
        params["consumer"] = selection.consumer
    return sql.SQL(" AND ").join(conditions), params


async def list_page(
    conn: psycopg.AsyncConnection, consumer: str, after: int, limit: int
) -> list[quarantine.Quarantined]:
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM quarantine WHERE id > %s AND (%s = '' OR consumer = %s) "
        "ORDER BY id LIMIT %s",
        (after, consumer, consumer, limit),
    )
    return [_quarantined(row) for row in await cur.fetchall()]


async def counts(conn: psycopg.AsyncConnection) -> dict[quarantine.Kind, int]:
    cur = await conn.execute("SELECT kind, count(*) FROM quarantine GROUP BY kind")
    found = {quarantine.Kind(kind): int(n) for kind, n in await cur.fetchall()}
    return {kind: found.get(kind, 0) for kind in quarantine.Kind}


async def retry_spec(conn: psycopg.AsyncConnection, selection: quarantine.Selection) -> tuple[int, int]:
    """Put the selected spec events back at the end of their consumers' outbox queues (a consumer
    deleted since keeps its events here); returns (put back, left)."""
    where, params = _where(selection, quarantine.Kind.SPEC)
    cur = await conn.execute(
        sql.SQL(
            """
            WITH back AS (
                DELETE FROM quarantine q WHERE {where}
                AND EXISTS (SELECT 1 FROM consumers c WHERE c.name = q.consumer)
                RETURNING resource_id, consumer, event_type, payload, created_at
            ), queued AS (
                INSERT INTO outbox (resource_id, consumer, event_type, payload, created_at)
                SELECT resource_id, consumer, event_type, payload, created_at FROM back ORDER BY created_at
                RETURNING id
            )
            SELECT (SELECT count(*) FROM queued), (SELECT count(*) FROM quarantine WHERE {where})
            """
        ).format(where=where),
        params,
    )
    row = await cur.fetchone()
    assert row is not None
    if row[0]:
        await conn.execute("SELECT pg_notify(%s, '')", (OUTBOX_CHANNEL,))
    return int(row[0]), int(row[1]) - int(row[0])


async def take_status(
    conn: psycopg.AsyncConnection, selection: quarantine.Selection
) -> list[tuple[str, bytes | None, bytes, bytes | None]]:
    """Lock and delete the selected status events, returning (topic, key, headers, value) of each
    in the order they were read: the caller sends them again before its transaction commits."""
    where, params = _where(selection, quarantine.Kind.STATUS)
    cur = await conn.execute(
        sql.SQL(
            "DELETE FROM quarantine WHERE id IN (SELECT id FROM quarantine WHERE {where} FOR UPDATE) "
            "RETURNING id, topic, message_key, headers, payload"
        ).format(where=where),
        params,
    )
    rows = sorted(await cur.fetchall(), key=lambda r: r[0])
    return [(r[1], _bytes(r[2]), bytes(r[3] or b"{}"), _bytes(r[4])) for r in rows]


async def drop(conn: psycopg.AsyncConnection, selection: quarantine.Selection) -> int:
    where, params = _where(selection)
    cur = await conn.execute(sql.SQL("DELETE FROM quarantine WHERE {where}").format(where=where), params)
    return cur.rowcount


def _bytes(value: object) -> bytes | None:
    return bytes(value) if value is not None else None  # type: ignore[call-overload]


def _quarantined(row: tuple[object, ...]) -> quarantine.Quarantined:
    return quarantine.Quarantined(
        id=int(row[0]),  # type: ignore[call-overload]
        kind=quarantine.Kind(row[1]),
        consumer=str(row[2]),
        resource_id=row[3],  # type: ignore[arg-type]
        event_type=str(row[4]),
        topic=str(row[5]),
        reason=str(row[6]),
        attempts=int(row[7]),  # type: ignore[call-overload]
        created_at=row[8],  # type: ignore[arg-type]
        quarantined_at=row[9],  # type: ignore[arg-type]
        partition=row[10],  # type: ignore[arg-type]
        offset=row[11],  # type: ignore[arg-type]
        size=int(row[12]),  # type: ignore[call-overload]
    )
