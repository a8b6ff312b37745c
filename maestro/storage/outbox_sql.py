"""The transactional outbox's read side: relays claim pending spec events, publish, then ack.

A claim leases whole consumers, not single rows: while one relay holds a consumer's lease no
other relay takes any of its rows, so each consumer's events are published in the order they
were written. `FOR NO KEY UPDATE ... SKIP LOCKED` on the consumer row lets concurrent relays pass
each other; unlike `FOR UPDATE`, it does not conflict with the key-share lock every spec write's
foreign key takes on its consumer row, so a claim never holds up a publish. A relay that dies
loses its lease after `lease` and another relay publishes its rows again (agents apply
idempotently by resource version).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import psycopg

from maestro.api import events

_CLAIM = """
WITH pending AS (
    SELECT consumer, min(id) AS first_id FROM outbox GROUP BY consumer
), ready AS (
    SELECT c.name FROM consumers c JOIN pending p ON p.consumer = c.name
    WHERE c.relay_lease_until IS NULL OR c.relay_lease_until < now()
    ORDER BY p.first_id
    LIMIT %(limit)s
    FOR NO KEY UPDATE OF c SKIP LOCKED
), leased AS (
    UPDATE consumers c SET relay_owner = %(owner)s, relay_lease_until = now() + %(lease)s
    FROM ready WHERE c.name = ready.name
    RETURNING c.name, c.spec_topic, c.spec_partition
)
SELECT id, resource_id, consumer, event_type, payload, created_at, spec_topic, spec_partition, attempts
FROM (
    SELECT o.*, l.spec_topic, l.spec_partition,
           row_number() OVER (PARTITION BY o.consumer ORDER BY o.id) AS nth
    FROM outbox o JOIN leased l ON l.name = o.consumer
) AS candidates
-- Every leased consumer gets a prefix of its rows, and at least its first one.
ORDER BY nth, id
LIMIT %(limit)s
"""

_ACK = """
WITH gone AS (DELETE FROM outbox WHERE id = ANY(%(ids)s) RETURNING consumer)
UPDATE consumers SET relay_owner = NULL, relay_lease_until = NULL
WHERE name IN (SELECT consumer FROM gone) AND relay_owner = %(owner)s
"""


@dataclasses.dataclass(frozen=True, slots=True)
class OutboxEntry:
    id: int
    resource_id: uuid.UUID
    consumer: str
    event_type: str
    # The CloudEvent in its JSON form (maestro.api.events.to_json).
    payload: bytes
    created_at: datetime
    topic: str
    partition: int
    #: times Kafka refused it for good so far
    attempts: int = 0

    def event(self) -> events.CloudEvent:
        return events.from_json(self.payload)


async def claim(conn: psycopg.AsyncConnection, limit: int, owner: str, lease: timedelta) -> list[OutboxEntry]:
    cur = await conn.execute(_CLAIM, {"limit": limit, "owner": owner, "lease": lease})
    entries = [
        OutboxEntry(
            id=row[0],
            resource_id=row[1],
            consumer=row[2],
            event_type=row[3],
            payload=bytes(row[4]),
            created_at=row[5],
            topic=row[6],
            partition=row[7],
            attempts=row[8],
        )
        for row in await cur.fetchall()
    ]
    entries.sort(key=lambda e: e.id)
    return entries


async def ack(conn: psycopg.AsyncConnection, ids: Sequence[int], owner: str) -> None:
    if ids:
        await conn.execute(_ACK, {"ids": list(ids), "owner": owner})


async def renew(conn: psycopg.AsyncConnection, consumers: Sequence[str], owner: str, lease: timedelta) -> int:
    """Extend this owner's leases of `consumers`; returns how many it still held."""
    cur = await conn.execute(
        "UPDATE consumers SET relay_lease_until = now() + %(lease)s "
        "WHERE name = ANY(%(names)s) AND relay_owner = %(owner)s",
        {"lease": lease, "names": list(consumers), "owner": owner},
    )
    return cur.rowcount


async def release(conn: psycopg.AsyncConnection, owner: str) -> None:
    await conn.execute(
        "UPDATE consumers SET relay_owner = NULL, relay_lease_until = NULL WHERE relay_owner = %s", (owner,)
    )


async def pending_count(conn: psycopg.AsyncConnection) -> int:
    cur = await conn.execute("SELECT count(*) FROM outbox")
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def backlog(conn: psycopg.AsyncConnection) -> tuple[int, float]:
    """How many events wait, and how many seconds the oldest of them has waited (0: none)."""
    cur = await conn.execute(
        "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0) FROM outbox"
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0]), float(row[1])
