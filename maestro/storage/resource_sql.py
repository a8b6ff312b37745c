"""Resource bundle queries: spec changes with their outbox rows, reads, lists, deletion.

`store.Store` runs each inside a transaction it owns; a spec change and its outbox row are
always written in that one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import psycopg
from psycopg import sql
from psycopg.types.json import Json, Jsonb

from maestro.api import bundle_events, bundles, errors, events, lifecycle, queries
from maestro.storage import budget as budget_mod
from maestro.storage import paging, rows

# Wakes outbox relays; the payload is the consumer whose events are waiting.
OUTBOX_CHANNEL = "maestro_outbox"

_EVENT_ACTION = {
    lifecycle.Outcome.CREATED: events.Action.CREATE_REQUEST,
    lifecycle.Outcome.UPDATED: events.Action.UPDATE_REQUEST,
    lifecycle.Outcome.DELETING: events.Action.DELETE_REQUEST,
}


async def apply_specs(
    conn: psycopg.AsyncConnection, requests: Sequence[bundles.SpecRequest], now: datetime
) -> list[lifecycle.SpecPlan | errors.MaestroError]:
    """Plan a batch of requests against their locked rows and store them with their outbox rows.

    Run on a connection in pipeline mode inside a transaction: the reads are one round trip, the
    writes and the commit another.

    One result per request, in order: its plan, or the error that refused it (a refused request
    writes nothing; the others still commit). Requests later in the batch see the effect of earlier
    ones on the same bundle, as if they had come one after another. Rows are locked in id order so
    concurrent batches of several replicas cannot deadlock.
    """
    ids = sorted({r.resource_id for r in requests})
    # Both reads go in one round trip (the connection is in pipeline mode): the consumers of every
    # request are looked up, though only creates need them.
    locked = await conn.execute(
        f"SELECT {rows.RESOURCE_COLUMNS} FROM resources WHERE id = ANY(%s) ORDER BY id FOR UPDATE", (ids,)
    )
    named = await conn.execute(
        "SELECT name FROM consumers WHERE name = ANY(%s)", (sorted({r.consumer for r in requests}),)
    )
    current = {b.id: b for b in map(rows.bundle, await locked.fetchall())}
    known = {row[0] for row in await named.fetchall()}
    stored_ids = set(current)
    results: list[lifecycle.SpecPlan | errors.MaestroError] = []
    inserts: list[tuple[object, ...]] = []
    updates: list[tuple[object, ...]] = []
    outbox: list[tuple[object, ...]] = []
    for request in requests:
        existing = current.get(request.resource_id)
        try:
            plan = lifecycle.plan_spec(existing, request, now)
        except errors.MaestroError as exc:
            results.append(exc)
            continue
        bundle = plan.bundle
        if plan.store and existing is None and bundle.consumer not in known:
            results.append(errors.NotFound("consumer", bundle.consumer))
            continue
        if plan.store and bundle.id not in stored_ids:
            inserts.append(
                (
                    bundle.id,
                    bundle.consumer,
                    bundle.source,
                    bundle.version,
                    Json(rows.spec_json(bundle)),
                    Jsonb(bundle.metadata),
                    now,
                    now,
                )
            )
            stored_ids.add(bundle.id)
        elif plan.store:
            updates.append(
                (
                    bundle.version,
                    Json(rows.spec_json(bundle)),
                    Jsonb(bundle.metadata),
                    now,
                    bundle.deleted_at,
                    bundle.id,
                )
            )
        if plan.emit:
            event = bundle_events.spec_event(bundle, _EVENT_ACTION[plan.outcome], now=now)
            outbox.append((bundle.id, bundle.consumer, event.type, events.to_json(event)))
        current[bundle.id] = bundle
        results.append(plan)
    async with conn.cursor() as cur:
        # executemany pipelines its statements: one round trip per list, not per row.
        if inserts:
            await cur.executemany(
                "INSERT INTO resources (id, consumer, source, version, spec, metadata, created_at,"
                " updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                inserts,
            )
        if updates:
            await cur.executemany(
                "UPDATE resources SET version = %s, spec = %s, metadata = %s, updated_at = %s,"
                " deleted_at = %s WHERE id = %s",
                updates,
            )
        if outbox:
            await cur.executemany(
                "INSERT INTO outbox (resource_id, consumer, event_type, payload) VALUES (%s, %s, %s, %s)",
                outbox,
            )
    # No NOTIFY here: a transaction that notifies holds PostgreSQL's global notify lock through its
    # commit's WAL flush, so every notifying commit would wait for the one before it. The caller
    # rings the relays after the commit (``Store``).
    return results


async def get(conn: psycopg.AsyncConnection, resource_id: uuid.UUID) -> bundles.BundleRecord:
    cur = await conn.execute(f"SELECT {rows.RESOURCE_COLUMNS} FROM resources WHERE id = %s", (resource_id,))
    row = await cur.fetchone()
    if row is None:
        raise errors.NotFound("resource bundle", str(resource_id))
    return rows.record(row)


def filter_conditions(where: queries.ResourceFilter, params: dict[str, object]) -> list[sql.Composable]:
    conditions: list[sql.Composable] = [sql.SQL("TRUE")]
    if where.consumer:
        conditions.append(sql.SQL("consumer = %(consumer)s"))
        params["consumer"] = where.consumer
    if where.source:
        conditions.append(sql.SQL("source = %(source)s"))
        params["source"] = where.source
    if where.labels:
        conditions.append(sql.SQL("metadata -> 'labels' @> %(labels)s"))
        params["labels"] = Jsonb(dict(where.labels))
    return conditions


def _weight(*, with_spec: bool = True, with_status: bool = True) -> str:
    """What a listed bundle weighs: the documents it carries (as their JSON text) and its scalars."""
    parts = ["octet_length(metadata::text)", str(queries.ROW_OVERHEAD_BYTES)]
    if with_spec:
        parts.append("octet_length(spec::text)")
    if with_status:
        parts.append("coalesce(octet_length(status::text), 0)")
    return " + ".join(parts)


def _page_query(
    where: queries.ResourceFilter, size: int, budget: int, token: str, columns: str, weight: str
) -> tuple[sql.Composed, dict[str, object]]:
    after = paging.parse_resource_token(token)
    params: dict[str, object] = {"limit": size + 1, "budget": budget}
    conditions = filter_conditions(where, params)
    if after is not None:
        conditions.append(sql.SQL("id > %(after)s"))
        params["after"] = after
    return budget_mod.bounded("resources", columns, conditions, "id", weight), params


async def count(conn: psycopg.AsyncConnection, where: queries.ResourceFilter) -> int:
    params: dict[str, object] = {}
    query = sql.SQL("SELECT count(*) FROM resources WHERE {where}").format(
        where=sql.SQL(" AND ").join(filter_conditions(where, params))
    )
    cur = await conn.execute(query, params)
    row = await cur.fetchone()
    return int(row[0]) if row else 0


#: what a work waits for: its cluster's report on its current spec (pending), nothing (reported),
#: its cluster to remove it (deleting)
PENDING, REPORTED, DELETING = "pending", "reported", "deleting"
WORK_STATES = (PENDING, REPORTED, DELETING)


async def count_by_state(conn: psycopg.AsyncConnection) -> dict[str, int]:
    """How many works are in each of ``WORK_STATES``. A status is stored only for the spec version
    it was reported on, so a work whose version moved past its status waits for a report. Scalar
    columns alone: no status is parsed."""
    cur = await conn.execute(
        """
        SELECT count(*) FILTER (WHERE deleted_at IS NULL AND COALESCE(status_version, 0) < version),
               count(*) FILTER (WHERE deleted_at IS NULL AND status_version >= version),
               count(*) FILTER (WHERE deleted_at IS NOT NULL)
        FROM resources
        """
    )
    row = await cur.fetchone()
    assert row is not None
    return dict(zip(WORK_STATES, (int(n) for n in row), strict=True))


async def list_page(
    conn: psycopg.AsyncConnection,
    where: queries.ResourceFilter,
    size: int,
    token: str,
    budget: int = queries.DEFAULT_PAGE_BYTES,
) -> queries.Page[bundles.BundleRecord]:
    query, params = _page_query(where, size, budget, token, rows.RESOURCE_COLUMNS, _weight())
    cur = await conn.execute(query, params)
    page, more = budget_mod.cut(await cur.fetchall(), size, budget)
    found = [rows.record(r) for r in page]
    return queries.Page(found, paging.resource_token(found[-1].bundle.id) if more else "")


async def list_page_raw(
    conn: psycopg.AsyncConnection,
    where: queries.ResourceFilter,
    size: int,
    token: str,
    budget: int = queries.DEFAULT_PAGE_BYTES,
    *,
    with_spec: bool = True,
    with_status: bool = True,
) -> queries.Page[bundles.RawRecord]:
    """The same page with the JSON documents as PostgreSQL's text: nothing is parsed, for listing.
    Without the spec (the status), each record's ``spec`` (``status``) is empty and weighs nothing
    in the budget."""
    columns = rows.raw_resource_columns(with_spec=with_spec, with_status=with_status)
    weight = _weight(with_spec=with_spec, with_status=with_status)
    query, params = _page_query(where, size, budget, token, columns, weight)
    # Binary results: uuids and timestamps arrive without parsing their text form.
    async with conn.cursor(binary=True) as cur:
        await cur.execute(query, params)
        page, more = budget_mod.cut(await cur.fetchall(), size, budget)
    found = [rows.raw_record(r) for r in page]
    return queries.Page(found, paging.resource_token(uuid.UUID(found[-1].id)) if more else "")


async def for_resync(conn: psycopg.AsyncConnection, consumer: str) -> list[bundles.ResourceBundle]:
    cur = await conn.execute(
        f"SELECT {rows.RESOURCE_COLUMNS} FROM resources WHERE consumer = %s ORDER BY id", (consumer,)
    )
    return [rows.bundle(r) for r in await cur.fetchall()]


async def for_source(conn: psycopg.AsyncConnection, source: str) -> list[bundles.BundleRecord]:
    cur = await conn.execute(
        f"SELECT {rows.RESOURCE_COLUMNS} FROM resources WHERE source = %s AND status IS NOT NULL ORDER BY id",
        (source,),
    )
    return [rows.record(r) for r in await cur.fetchall()]


async def expired_deletions(
    conn: psycopg.AsyncConnection, grace: timedelta, limit: int
) -> list[bundles.ResourceBundle]:
    cur = await conn.execute(
        f"""
        SELECT {rows.RESOURCE_COLUMNS} FROM resources
        WHERE deleted_at IS NOT NULL AND deleted_at <= now() - %s
        ORDER BY deleted_at LIMIT %s
        """,
        (grace, limit),
    )
    return [rows.bundle(r) for r in await cur.fetchall()]


async def hard_delete(
    conn: psycopg.AsyncConnection, ids: Sequence[uuid.UUID], rev_lock: int, channel: str
) -> list[bundles.StatusChange]:
    """Remove soft-deleted bundles, leaving tombstones the status watch reports as deleted."""
    if not ids:
        return []
    # Status revisions must commit in the order they are drawn (see status_sql.ingest).
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (rev_lock,))
    cur = await conn.execute(
        f"""
        WITH gone AS (
            DELETE FROM resources WHERE id = ANY(%(ids)s) AND deleted_at IS NOT NULL
            RETURNING id, consumer, source, version, metadata, status, status_version, status_sequence,
                      status_hash, deleted_at
        ), tomb AS (
            INSERT INTO resource_tombstones (status_rev, id, consumer, source, version, metadata, status,
                                             status_version, status_sequence, status_hash, deleted_at)
            SELECT nextval('status_rev_seq'), id, consumer, source, version, metadata, status,
                   status_version, status_sequence, status_hash, deleted_at
            FROM gone ORDER BY id
            RETURNING *
        )
        SELECT {rows.TOMBSTONE_COLUMNS} FROM tomb ORDER BY status_rev
        """,
        {"ids": list(ids)},
    )
    changes = [
        bundles.StatusChange(rev=record.status_rev, record=record, deleted=True)
        for record in map(rows.record, await cur.fetchall())
    ]
    if changes:
        await conn.execute("SELECT pg_notify(%s, %s)", (channel, str(changes[-1].rev)))
    return changes
