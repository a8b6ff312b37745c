"""Consumer queries; `store.Store` runs each inside a transaction it owns."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from maestro.api import consumers, errors, queries
from maestro.storage import budget as budget_mod
from maestro.storage import paging, rows

# What a consumer needs outside the database (its Kafka topics and ACLs), made or removed inside
# the transaction that creates or deletes it.
Provision = Callable[[consumers.Consumer], Awaitable[None]]
T = TypeVar("T")

# Registrations hold it shared until they commit; a sweep of what registrations left in Kafka
# holds it alone, so that it never takes a registration under way for a leftover.
REGISTRATION_LOCK = 0x6D61_6573_7472_6F02  # "maestro" + 2


async def create(
    conn: psycopg.AsyncConnection,
    consumer: consumers.Consumer,
    policy: consumers.PlacementPolicy,
    provision: Provision | None = None,
) -> consumers.Consumer:
    """Insert the consumer with a new slot; ``provision`` (its topics and ACLs) runs before the
    transaction commits, so a consumer exists only once what it needs in Kafka does."""
    await conn.execute("SELECT pg_advisory_xact_lock_shared(%s)", (REGISTRATION_LOCK,))
    cur = await conn.execute(
        f"SELECT {rows.CONSUMER_COLUMNS} FROM consumers WHERE name = %s", (consumer.name,)
    )
    if await cur.fetchone() is not None:
        raise errors.AlreadyExists("consumer", consumer.name)
    # A sequence value is never handed out twice, even by transactions that roll back, so no
    # cluster is ever given a partition that held another cluster's events.
    cur = await conn.execute("SELECT nextval('placement_slot_seq')")
    row = await cur.fetchone()
    assert row is not None
    slot = int(row[0])
    placement = policy.placement(slot)
    try:
        cur = await conn.execute(
            f"""
            INSERT INTO consumers (name, labels, placement_slot, spec_topic, spec_partition, status_topic)
            VALUES (%s, %s, %s, %s, %s, %s)
            RETURNING {rows.CONSUMER_COLUMNS}
            """,
            (
                consumer.name,
                Jsonb(dict(consumer.labels)),
                slot,
                placement.topic,
                placement.partition,
                policy.status_topic_of(slot),
            ),
        )
    except psycopg.errors.UniqueViolation:
        # A concurrent create of the same name won the race.
        raise errors.AlreadyExists("consumer", consumer.name) from None
    created = await cur.fetchone()
    assert created is not None
    made = rows.consumer(created)
    if provision is not None:
        await provision(made)
    return made


async def get(conn: psycopg.AsyncConnection, name: str) -> consumers.Consumer:
    cur = await conn.execute(f"SELECT {rows.CONSUMER_COLUMNS} FROM consumers WHERE name = %s", (name,))
    row = await cur.fetchone()
    if row is None:
        raise errors.NotFound("consumer", name)
    return rows.consumer(row)


async def by_slots(conn: psycopg.AsyncConnection, slots: Sequence[int]) -> dict[int, consumers.Consumer]:
    cur = await conn.execute(
        f"SELECT {rows.CONSUMER_COLUMNS} FROM consumers WHERE placement_slot = ANY(%s)", (list(slots),)
    )
    found = [rows.consumer(r) for r in await cur.fetchall()]
    return {c.placement_slot: c for c in found}


async def list_page(
    conn: psycopg.AsyncConnection,
    where: queries.ConsumerFilter,
    size: int,
    token: str,
    budget: int = queries.DEFAULT_PAGE_BYTES,
) -> queries.Page[consumers.Consumer]:
    after = paging.parse_name_token(token)
    conditions: list[sql.Composable] = [sql.SQL("TRUE")]
    params: dict[str, object] = {"limit": size + 1, "budget": budget}
    if after is not None:
        conditions.append(sql.SQL("name > %(after)s"))
        params["after"] = after
    if where.labels:
        conditions.append(sql.SQL("labels @> %(labels)s"))
        params["labels"] = Jsonb(dict(where.labels))
    weight = f"octet_length(labels::text) + octet_length(name) + {queries.ROW_OVERHEAD_BYTES}"
    query = budget_mod.bounded("consumers", rows.CONSUMER_COLUMNS, conditions, "name", weight)
    cur = await conn.execute(query, params)
    page, more = budget_mod.cut(await cur.fetchall(), size, budget)
    found = [rows.consumer(r) for r in page]
    return queries.Page(found, paging.name_token(found[-1].name) if more else "")


async def update_labels(
    conn: psycopg.AsyncConnection, name: str, labels: Mapping[str, str]
) -> consumers.Consumer:
    cur = await conn.execute(
        f"UPDATE consumers SET labels = %s WHERE name = %s RETURNING {rows.CONSUMER_COLUMNS}",
        (Jsonb(dict(labels)), name),
    )
    row = await cur.fetchone()
    if row is None:
        raise errors.NotFound("consumer", name)
    return rows.consumer(row)


async def delete(conn: psycopg.AsyncConnection, name: str, deprovision: Provision | None = None) -> None:
    """Delete the consumer; ``deprovision`` (its ACLs and topics) runs before the transaction
    commits, so a consumer that failed to lose them is still there to delete again."""
    # Lock the row first: a concurrent bundle create then waits on its foreign key check and fails
    # once the consumer is gone, instead of slipping in between the count and the delete.
    cur = await conn.execute(
        f"SELECT {rows.CONSUMER_COLUMNS} FROM consumers WHERE name = %s FOR UPDATE", (name,)
    )
    row = await cur.fetchone()
    if row is None:
        raise errors.NotFound("consumer", name)
    cur = await conn.execute("SELECT count(*), count(deleted_at) FROM resources WHERE consumer = %s", (name,))
    counts = await cur.fetchone()
    assert counts is not None
    live, deleting = counts
    if live:
        raise errors.Conflict(
            f"consumer {name!r} still has {live} resource bundle(s), {deleting} of them being deleted",
            "delete its bundles first; deleting ones go when the agent confirms or their grace runs out",
        )
    await conn.execute("DELETE FROM consumers WHERE name = %s", (name,))
    if deprovision is not None:
        await deprovision(rows.consumer(row))


async def sweep(conn: psycopg.AsyncConnection, release: Callable[[set[int]], Awaitable[T]]) -> T:
    """Run ``release`` with every registered slot while no registration is under way."""
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (REGISTRATION_LOCK,))
    cur = await conn.execute("SELECT placement_slot FROM consumers")
    return await release({int(row[0]) for row in await cur.fetchall()})
