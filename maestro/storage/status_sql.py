"""Status queries: batch ingestion of agents' reports and the change feed the watch streams.

Every stored status change draws a new `status_rev`; a watcher resumes after the last one it
saw. Writers take `STATUS_REV_LOCK` before drawing revisions, so revisions commit in the order
they are drawn and a reader never sees rev N+1 while rev N is still to come.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import orjson
import psycopg
from psycopg import sql

from maestro.api import bundles, queries, statushash
from maestro.storage import resource_sql, rows

# Ingestion notifies this channel (payload: the highest stored revision) so watchers wake up.
STATUS_CHANNEL = "maestro_status"
STATUS_REV_LOCK = 0x6D61_6573_7472_6F03

# Mirrors lifecycle.judge_status: drop reports for another spec version than the stored one,
# reports beyond the sequence limit, and reports not newer than the stored sequence unless that
# one is itself beyond the limit (it must not freeze the status). Duplicates within one batch keep
# the highest sequence.
#
# A report counts only for a bundle of the consumer it is bound to: the consumer holding the
# placement slot of the status topic it came on (`slot`), or, for the server's own reports
# (orphaned deletions), the one it names. A report for another consumer's bundle is returned as
# foreign and never stored, and it is left out before duplicates are resolved, so that it cannot
# shadow its owner's report in the same batch.
_INGEST = """
WITH sent AS (
    SELECT t.n, t.id, t.version, t.seq, t.status, t.hash, r.consumer AS owner,
           coalesce(r.consumer = CASE WHEN t.slot IS NULL THEN t.consumer ELSE c.name END, false)
               AS bound
    FROM json_to_recordset(%(batch)s::json)
         AS t(n integer, id uuid, consumer text, slot integer, version bigint, seq bigint, status json,
              hash text)
    LEFT JOIN resources r ON r.id = t.id
    LEFT JOIN consumers c ON c.placement_slot = t.slot
),
incoming AS (
    SELECT DISTINCT ON (id) id, version, seq, status, hash
    FROM sent WHERE bound AND seq <= %(max_seq)s
    ORDER BY id, seq DESC
),
stored AS (
    UPDATE resources r
    SET status = i.status, status_version = i.version, status_sequence = i.seq, status_hash = i.hash,
        status_rev = nextval('status_rev_seq'), status_updated_at = now()
    FROM incoming i
    WHERE r.id = i.id
      AND i.version = r.version
      AND (r.status_sequence IS NULL OR i.seq > r.status_sequence OR r.status_sequence > %(max_seq)s)
    RETURNING r.id, r.status_sequence, r.status_rev
)
SELECT id, status_sequence, status_rev, NULL::integer, NULL::text FROM stored
UNION ALL
SELECT id, seq, NULL, n, owner FROM sent WHERE owner IS NOT NULL AND NOT bound
"""


@dataclasses.dataclass(frozen=True, slots=True)
class StoredStatus:
    report: bundles.StatusReport
    rev: int


@dataclasses.dataclass(frozen=True, slots=True)
class Foreign:
    """A report that named a bundle of a consumer other than the one it is bound to."""

    report: bundles.StatusReport
    #: the consumer the bundle belongs to
    owner: str


@dataclasses.dataclass(frozen=True, slots=True)
class IngestResult:
    stored: list[StoredStatus]
    # Stale (another version, an older sequence), superseded within the batch, for an unknown bundle.
    dropped: list[bundles.StatusReport]
    # For a bundle of another consumer than the report is bound to: never stored.
    foreign: list[Foreign] = dataclasses.field(default_factory=list)
    # Refused by the database, each with its reason (what validation should have refused).
    rejected: list[tuple[bundles.StatusReport, str]] = dataclasses.field(default_factory=list)


async def queue_ingest(
    conn: psycopg.AsyncConnection,
    reports: Sequence[bundles.StatusReport],
    max_sequence: int,
    slots: Sequence[int | None] | None = None,
) -> psycopg.AsyncCursor[Any]:
    """Queue a batch's statements; in a pipeline they go out with the commit in one round trip.

    ``slots[i]`` binds ``reports[i]`` to the consumer of that placement slot (the slot of the
    status topic it was read from); a report without one is bound to the consumer it names (the
    server's own reports). Read the returned cursor after the transaction ends and pass its rows
    to `ingest_result`.
    """
    bound_to = slots if slots is not None else [None] * len(reports)
    if len(bound_to) != len(reports):
        raise ValueError(f"{len(reports)} reports but {len(bound_to)} slots")
    # One JSON document for the whole batch: dumping it is one orjson call, where per-element
    # array parameters cost psycopg more than the rest of the ingest together.
    batch = [
        {
            "n": n,
            "id": str(r.resource_id),
            "consumer": r.consumer,
            "slot": slot,
            "version": r.resource_version,
            "seq": r.status.sequence_id,
            "status": r.status.to_json(),
            "hash": statushash.status_hash(r.status),
        }
        for n, (r, slot) in enumerate(zip(reports, bound_to, strict=True))
    ]
    params = {"batch": orjson.dumps(batch).decode(), "max_seq": max_sequence}
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (STATUS_REV_LOCK,))
    cur = await conn.execute(_INGEST, params)
    await conn.execute("SELECT pg_notify(%s, '')", (STATUS_CHANNEL,))
    return cur


def ingest_result(
    reports: Sequence[bundles.StatusReport], stored_rows: Sequence[tuple[Any, ...]]
) -> IngestResult:
    revs: dict[tuple[Any, Any], int] = {}
    owners: dict[int, str] = {}
    for rid, seq, rev, n, owner in stored_rows:
        if owner is None:
            revs[(rid, seq)] = rev
        else:
            owners[n] = owner
    stored: list[StoredStatus] = []
    dropped: list[bundles.StatusReport] = []
    foreign: list[Foreign] = []
    for n, report in enumerate(reports):
        if n in owners:
            foreign.append(Foreign(report, owners[n]))
            continue
        rev = revs.pop((report.resource_id, report.status.sequence_id), None)
        if rev is None:
            dropped.append(report)
        else:
            stored.append(StoredStatus(report, rev))
    return IngestResult(stored, dropped, foreign)


async def changes_since(
    conn: psycopg.AsyncConnection, after: int, where: queries.ResourceFilter, limit: int
) -> list[bundles.StatusChange]:
    params: dict[str, object] = {"after": after, "limit": limit}
    conditions = resource_sql.filter_conditions(dataclasses.replace(where, labels={}), params)
    conditions.append(sql.SQL("status_rev > %(after)s"))
    where_sql = sql.SQL(" AND ").join(conditions)
    query = sql.SQL(
        """
        (SELECT {live}, false FROM resources WHERE {where} ORDER BY status_rev LIMIT %(limit)s)
        UNION ALL
        (SELECT {gone}, true FROM resource_tombstones WHERE {where} ORDER BY status_rev LIMIT %(limit)s)
        ORDER BY status_rev LIMIT %(limit)s
        """
    ).format(live=sql.SQL(rows.STATUS_CHANGE_COLUMNS), gone=sql.SQL(rows.TOMBSTONE_COLUMNS), where=where_sql)
    cur = await conn.execute(query, params)
    out = []
    for row in await cur.fetchall():
        record = rows.record(row)
        out.append(bundles.StatusChange(rev=record.status_rev, record=record, deleted=bool(row[14])))
    return out


async def current_rev(conn: psycopg.AsyncConnection) -> int:
    """The highest committed status revision (what a list hands a watcher to resume from)."""
    cur = await conn.execute(
        """
        SELECT greatest(
            (SELECT max(status_rev) FROM resources),
            (SELECT max(status_rev) FROM resource_tombstones),
            0)
        """
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def prune_tombstones(conn: psycopg.AsyncConnection, older_than: timedelta) -> int:
    cur = await conn.execute("DELETE FROM resource_tombstones WHERE removed_at < now() - %s", (older_than,))
    return cur.rowcount
