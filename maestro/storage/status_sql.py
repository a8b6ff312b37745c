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

# Mirrors lifecycle.judge_status: drop reports for an older spec version and reports not newer
# than the stored sequence. Duplicates within one batch keep the highest sequence.
_INGEST = """
WITH incoming AS (
    SELECT DISTINCT ON (t.id) t.id, t.version, t.seq, t.status, t.hash
    FROM json_to_recordset(%(batch)s::json)
         AS t(id uuid, version bigint, seq bigint, status json, hash text)
    ORDER BY t.id, t.seq DESC
)
UPDATE resources r
SET status = i.status, status_version = i.version, status_sequence = i.seq, status_hash = i.hash,
    status_rev = nextval('status_rev_seq'), status_updated_at = now()
FROM incoming i
WHERE r.id = i.id
  AND i.version >= r.version
  AND (r.status_sequence IS NULL OR i.seq > r.status_sequence)
RETURNING r.id, r.status_sequence, r.status_rev
"""


@dataclasses.dataclass(frozen=True, slots=True)
class StoredStatus:
    report: bundles.StatusReport
    rev: int


@dataclasses.dataclass(frozen=True, slots=True)
class IngestResult:
    stored: list[StoredStatus]
    # Stale (older version or sequence), superseded within the batch, or for an unknown bundle.
    dropped: list[bundles.StatusReport]


async def queue_ingest(
    conn: psycopg.AsyncConnection, reports: Sequence[bundles.StatusReport]
) -> psycopg.AsyncCursor[Any]:
    """Queue a batch's statements; in a pipeline they go out with the commit in one round trip.

    Read the returned cursor after the transaction ends and pass its rows to `ingest_result`.
    """
    # One JSON document for the whole batch: dumping it is one orjson call, where per-element
    # array parameters cost psycopg more than the rest of the ingest together.
    batch = [
        {
            "id": str(r.resource_id),
            "version": r.resource_version,
            "seq": r.status.sequence_id,
            "status": r.status.to_json(),
            "hash": statushash.status_hash(r.status),
        }
        for r in reports
    ]
    params = {"batch": orjson.dumps(batch).decode()}
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (STATUS_REV_LOCK,))
    cur = await conn.execute(_INGEST, params)
    await conn.execute("SELECT pg_notify(%s, '')", (STATUS_CHANNEL,))
    return cur


def ingest_result(
    reports: Sequence[bundles.StatusReport], stored_rows: Sequence[tuple[Any, ...]]
) -> IngestResult:
    revs = {(rid, seq): rev for rid, seq, rev in stored_rows}
    stored: list[StoredStatus] = []
    dropped: list[bundles.StatusReport] = []
    for report in reports:
        rev = revs.pop((report.resource_id, report.status.sequence_id), None)
        if rev is None:
            dropped.append(report)
        else:
            stored.append(StoredStatus(report, rev))
    return IngestResult(stored, dropped)


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
