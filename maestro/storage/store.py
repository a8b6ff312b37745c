"""`Store`: Maestro's state in PostgreSQL, one transaction per call.

Built by the server's wiring over a pool from `pool.open_pool` (after `migrations.migrate`);
used by the gRPC services (spec requests, queries, the status watch), the status ingester, the
outbox relay and the deletion reaper. Every method is safe to call from several replicas at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool

from maestro.api import bundles, consumers, errors, lifecycle, quarantine, queries, revocations, search
from maestro.storage import (
    consumer_sql,
    outbox_sql,
    quarantine_sql,
    resource_sql,
    revocation_sql,
    search_sql,
    status_sql,
)
from maestro.storage.doorbell import Doorbell

STATUS_CHANNEL = status_sql.STATUS_CHANNEL
OUTBOX_CHANNEL = resource_sql.OUTBOX_CHANNEL
REVOCATION_CHANNEL = revocation_sql.REVOCATION_CHANNEL

OutboxEntry = outbox_sql.OutboxEntry
IngestResult = status_sql.IngestResult
ForeignStatus = status_sql.Foreign
StoredStatus = status_sql.StoredStatus
# A quarantined status event to send again: (topic, key, headers as JSON, value).
T = TypeVar("T")
HeldMessage = tuple[str, bytes | None, bytes, bytes | None]

# Concurrent creates of one id both find no row to lock and race to insert; the loser retries
# and then sees the winner's row.
_INSERT_RETRIES = 3

# What the database refuses for the values a request holds (a NUL character, a number out of
# range, an index entry too large), as opposed to the database being away. Validation refuses
# all of these first; this is the net beneath it, so that a gap there fails one item, not a batch.
_REFUSED_BY_DATABASE = (psycopg.DataError, psycopg.errors.ProgramLimitExceeded)


def _reason(exc: Exception) -> str:
    diag = getattr(exc, "diag", None)
    return (diag.message_primary if diag is not None else None) or str(exc)


def _refused(exc: Exception) -> errors.InvalidArgument:
    return errors.InvalidArgument("event", f"the database refused it: {_reason(exc)}", "correct the event")


@dataclasses.dataclass(frozen=True, slots=True)
class SpecResult:
    outcome: lifecycle.Outcome
    bundle: bundles.ResourceBundle


class Store:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        *,
        placement: consumers.PlacementPolicy | None = None,
        owner: str | None = None,
    ) -> None:
        self._pool = pool
        self._placement = placement or consumers.PlacementPolicy()
        # Names this process's outbox leases.
        self.owner = owner or f"relay-{uuid.uuid4()}"
        self._outbox_bell = Doorbell(pool, OUTBOX_CHANNEL)

    # Consumers.

    async def create_consumer(
        self,
        name: str,
        labels: Mapping[str, str] | None = None,
        *,
        provision: consumer_sql.Provision | None = None,
    ) -> consumers.Consumer:
        """Register a consumer; ``provision`` makes what it needs in Kafka before it commits."""
        consumer = consumers.new_consumer(name, labels)
        async with self._pool.connection() as conn, conn.transaction():
            return await consumer_sql.create(conn, consumer, self._placement, provision)

    async def get_consumer(self, name: str) -> consumers.Consumer:
        consumers.check_lookup_name(name)
        async with self._pool.connection() as conn:
            return await consumer_sql.get(conn, name)

    async def consumers_by_slot(self, slots: Sequence[int]) -> dict[int, consumers.Consumer]:
        """The consumers holding these placement slots (a slot of no consumer is left out)."""
        async with self._pool.connection() as conn:
            return await consumer_sql.by_slots(conn, slots)

    async def list_consumers(
        self,
        where: queries.ConsumerFilter | None = None,
        page_size: int = queries.DEFAULT_PAGE_SIZE,
        page_token: str = "",
        page_bytes: int = queries.DEFAULT_PAGE_BYTES,
    ) -> queries.Page[consumers.Consumer]:
        async with self._pool.connection() as conn:
            return await consumer_sql.list_page(
                conn,
                where or queries.ConsumerFilter(),
                queries.page_size(page_size),
                page_token,
                queries.page_bytes(page_bytes),
            )

    async def update_consumer_labels(self, name: str, labels: Mapping[str, str]) -> consumers.Consumer:
        consumers.check_lookup_name(name)
        checked = consumers.validate_labels(labels)
        async with self._pool.connection() as conn, conn.transaction():
            return await consumer_sql.update_labels(conn, name, checked)

    async def delete_consumer(self, name: str, *, deprovision: consumer_sql.Provision | None = None) -> None:
        """Delete a consumer without bundles; ``deprovision`` removes what it has in Kafka first."""
        consumers.check_lookup_name(name)
        async with self._pool.connection() as conn, conn.transaction():
            await consumer_sql.delete(conn, name, deprovision)

    async def sweep(self, release: Callable[[set[int]], Awaitable[T]]) -> T:
        """Run ``release`` (which removes what Kafka holds of unregistered slots) with every
        registered slot, while no consumer is being registered."""
        async with self._pool.connection() as conn, conn.transaction():
            return await consumer_sql.sweep(conn, release)

    # Resource bundles: spec changes (each with its outbox row, in one transaction).

    async def apply_spec(self, request: bundles.SpecRequest, now: datetime | None = None) -> SpecResult:
        result = (await self.apply_specs([request], now))[0]
        if isinstance(result, errors.MaestroError):
            raise result
        return result

    async def apply_specs(
        self, requests: Sequence[bundles.SpecRequest], now: datetime | None = None
    ) -> list[SpecResult | errors.MaestroError]:
        """Apply a batch in one transaction: each request's result, or the error that refused it.

        Should the database refuse the batch for what a request holds, each request is applied
        alone: one bad request fails only itself, never the callers it shares a transaction with.
        """
        try:
            return await self._apply_specs(requests, now)
        except _REFUSED_BY_DATABASE as exc:
            if len(requests) == 1:
                return [_refused(exc)]
        results: list[SpecResult | errors.MaestroError] = []
        for request in requests:
            try:
                results.extend(await self._apply_specs([request], now))
            except _REFUSED_BY_DATABASE as exc:
                results.append(_refused(exc))
        return results

    async def _apply_specs(
        self, requests: Sequence[bundles.SpecRequest], now: datetime | None
    ) -> list[SpecResult | errors.MaestroError]:
        for attempt in range(_INSERT_RETRIES):
            try:
                async with self._pool.connection() as conn, conn.pipeline(), conn.transaction():
                    plans = await resource_sql.apply_specs(conn, requests, now or datetime.now(UTC))
                if any(not isinstance(p, errors.MaestroError) and p.emit for p in plans):
                    self._outbox_bell.ring()
                return [
                    p if isinstance(p, errors.MaestroError) else SpecResult(p.outcome, p.bundle)
                    for p in plans
                ]
            except psycopg.errors.UniqueViolation:
                if attempt == _INSERT_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    async def create_resource(self, request: bundles.SpecRequest, now: datetime | None = None) -> SpecResult:
        return await self.apply_spec(dataclasses.replace(request, action=bundles.SpecAction.CREATE), now)

    async def update_resource(self, request: bundles.SpecRequest, now: datetime | None = None) -> SpecResult:
        return await self.apply_spec(dataclasses.replace(request, action=bundles.SpecAction.UPDATE), now)

    async def delete_resource(self, request: bundles.SpecRequest, now: datetime | None = None) -> SpecResult:
        """Soft delete: marks the bundle deleting and queues the delete for its agent."""
        return await self.apply_spec(dataclasses.replace(request, action=bundles.SpecAction.DELETE), now)

    async def hard_delete(self, ids: Sequence[uuid.UUID]) -> list[bundles.StatusChange]:
        """Remove bundles that are being deleted (others are left alone); returns their tombstones."""
        async with self._pool.connection() as conn, conn.transaction():
            return await resource_sql.hard_delete(conn, ids, status_sql.STATUS_REV_LOCK, STATUS_CHANNEL)

    # Resource bundles: reads.

    async def get_resource(self, resource_id: uuid.UUID) -> bundles.BundleRecord:
        async with self._pool.connection() as conn:
            return await resource_sql.get(conn, resource_id)

    async def list_resources(
        self,
        where: queries.ResourceFilter | None = None,
        page_size: int = queries.DEFAULT_PAGE_SIZE,
        page_token: str = "",
        page_bytes: int = queries.DEFAULT_PAGE_BYTES,
    ) -> queries.Page[bundles.BundleRecord]:
        async with self._pool.connection() as conn:
            return await resource_sql.list_page(
                conn,
                where or queries.ResourceFilter(),
                queries.page_size(page_size),
                page_token,
                queries.page_bytes(page_bytes),
            )

    async def count_resources(self, where: queries.ResourceFilter | None = None) -> int:
        async with self._pool.connection() as conn:
            return await resource_sql.count(conn, where or queries.ResourceFilter())

    async def list_resources_raw(
        self,
        where: queries.ResourceFilter | None = None,
        page_size: int = queries.DEFAULT_PAGE_SIZE,
        page_token: str = "",
        page_bytes: int = queries.DEFAULT_PAGE_BYTES,
        *,
        with_spec: bool = True,
        with_status: bool = True,
    ) -> queries.Page[bundles.RawRecord]:
        async with self._pool.connection() as conn:
            return await resource_sql.list_page_raw(
                conn,
                where or queries.ResourceFilter(),
                queries.page_size(page_size),
                page_token,
                queries.page_bytes(page_bytes),
                with_spec=with_spec,
                with_status=with_status,
            )

    async def search_resource_ids(
        self, node: search.Node | None, source: str, offset: int, size: int
    ) -> tuple[list[uuid.UUID], int]:
        """One offset page of the ids of the bundles a search matches (of ``source`` alone unless
        it is empty), and how many it matches in all."""
        async with self._pool.connection() as conn:
            return await search_sql.bundle_ids(conn, node, source, offset, size)

    async def resources_by_ids(
        self, ids: Sequence[uuid.UUID], page_bytes: int = queries.DEFAULT_PAGE_BYTES
    ) -> AsyncIterator[list[bundles.BundleRecord]]:
        """The bundles of ``ids`` in id order, a chunk of at most ``page_bytes`` (or one bundle) at
        a time: a reader that sends each chunk on holds one at a time."""
        after: uuid.UUID | None = None
        while ids:
            async with self._pool.connection() as conn:
                chunk, more = await search_sql.bundles_by_ids(conn, ids, after, page_bytes)
            if chunk:
                yield chunk
            if not more or not chunk:
                return
            after = chunk[-1].bundle.id

    async def search_consumers(
        self, node: search.Node | None, offset: int, size: int
    ) -> tuple[list[consumers.Consumer], int]:
        async with self._pool.connection() as conn:
            return await search_sql.consumer_page(conn, node, offset, size)

    async def resources_for_resync(self, consumer: str) -> list[bundles.ResourceBundle]:
        """Every bundle of a consumer, deleting ones included: the input to `resync.agent_answer`."""
        async with self._pool.connection() as conn:
            return await resource_sql.for_resync(conn, consumer)

    async def records_for_source(self, source: str) -> list[bundles.BundleRecord]:
        """Every bundle of a source that has a status: the input to `resync.source_answer`."""
        async with self._pool.connection() as conn:
            return await resource_sql.for_source(conn, source)

    async def expired_deletions(self, grace: timedelta, limit: int = 500) -> list[bundles.ResourceBundle]:
        """Bundles soft-deleted longer than `grace` ago (their agent never confirmed), oldest first."""
        async with self._pool.connection() as conn:
            return await resource_sql.expired_deletions(conn, grace, limit)

    # Statuses.

    async def ingest_statuses(
        self,
        batch: Sequence[bundles.StatusReport],
        slots: Sequence[int | None] | None = None,
        *,
        max_sequence: int | None = None,
    ) -> IngestResult:
        """Store a batch of reports in one round trip, dropping stale ones in SQL.

        Agents' reports come with ``slots``: each is bound to the consumer of the placement slot
        of the status topic it came on, whatever it names, and one for another consumer's bundle
        is returned as foreign, never stored. Without, each report is bound to the consumer it
        names: for reports the server makes itself.

        `max_sequence` (default: `lifecycle.sequence_limit` of this host's clock) is the highest
        sequence id kept, and a stored one above it no longer makes newer reports stale. Should the
        database refuse the batch for what a report holds, each report is stored alone and the ones
        it refuses come back in `rejected`: one bad report never keeps the others out.
        """
        if not batch:
            return IngestResult([], [])
        bound_to = list(slots) if slots is not None else [None] * len(batch)
        limit = lifecycle.sequence_limit(time.time_ns()) if max_sequence is None else max_sequence
        try:
            return await self._ingest(batch, limit, bound_to)
        except _REFUSED_BY_DATABASE as exc:
            if len(batch) == 1:
                return IngestResult([], [], rejected=[(batch[0], _reason(exc))])
        stored: list[StoredStatus] = []
        dropped: list[bundles.StatusReport] = []
        foreign: list[status_sql.Foreign] = []
        rejected: list[tuple[bundles.StatusReport, str]] = []
        for report, slot in zip(batch, bound_to, strict=True):
            try:
                one = await self._ingest([report], limit, [slot])
            except _REFUSED_BY_DATABASE as exc:
                rejected.append((report, _reason(exc)))
                continue
            stored.extend(one.stored)
            dropped.extend(one.dropped)
            foreign.extend(one.foreign)
        return IngestResult(stored, dropped, foreign, rejected)

    async def _ingest(
        self, batch: Sequence[bundles.StatusReport], max_sequence: int, slots: Sequence[int | None]
    ) -> IngestResult:
        async with self._pool.connection() as conn, conn.pipeline():
            async with conn.transaction():
                cur = await status_sql.queue_ingest(conn, batch, max_sequence, slots)
            stored_rows = await cur.fetchall()
        return status_sql.ingest_result(batch, stored_rows)

    async def status_changes_since(
        self, token: str, where: queries.ResourceFilter | None = None, limit: int = 500
    ) -> list[bundles.StatusChange]:
        """Changes after a resume token (empty: from the beginning), oldest first."""
        after = queries.parse_resume_token(token)
        async with self._pool.connection() as conn:
            return await status_sql.changes_since(conn, after, where or queries.ResourceFilter(), limit)

    async def current_status_token(self) -> str:
        async with self._pool.connection() as conn:
            return queries.resume_token(await status_sql.current_rev(conn))

    async def prune_tombstones(self, older_than: timedelta) -> int:
        async with self._pool.connection() as conn, conn.transaction():
            return await status_sql.prune_tombstones(conn, older_than)

    # Revoked client certificates.

    async def revoke_certificate(self, serial: int, reason: str, by: str) -> revocations.Revocation:
        async with self._pool.connection() as conn, conn.transaction():
            return await revocation_sql.revoke(conn, serial, reason, by)

    async def revoked_certificates(self) -> list[revocations.Revocation]:
        async with self._pool.connection() as conn:
            return await revocation_sql.list_all(conn)

    # The outbox.

    async def claim_outbox(
        self, limit: int = 100, lease: timedelta = timedelta(seconds=30)
    ) -> list[OutboxEntry]:
        """Lease up to `limit` pending events, whole consumers at a time, in id order.

        Publish each consumer's events in the order given, then `ack_outbox` them in one call.
        """
        async with self._relay_transaction() as conn:
            return await outbox_sql.claim(conn, limit, self.owner, lease)

    async def ack_outbox(self, ids: Sequence[int]) -> None:
        """Drop published events and give back the leases of their consumers."""
        async with self._relay_transaction() as conn:
            await outbox_sql.ack(conn, ids, self.owner)

    @contextlib.asynccontextmanager
    async def _relay_transaction(self) -> AsyncIterator[psycopg.AsyncConnection]:
        """A relay's lease, ack or settlement, committed without waiting for its WAL flush: should PostgreSQL
        lose it in a crash, the rows are published again, which the outbox allows for anyway (a
        relay dying between publish and ack does the same). Spec changes never commit this way."""
        async with self._pool.connection() as conn, conn.pipeline(), conn.transaction():
            await conn.execute("SET LOCAL synchronous_commit TO off")
            yield conn

    async def renew_outbox(self, consumers: Sequence[str], lease: timedelta = timedelta(seconds=30)) -> int:
        """Keep leasing `consumers` while their events are still on their way to Kafka.

        Returns how many of them this store still held (a lease that had expired and was taken by
        another relay is not taken back).
        """
        async with self._pool.connection() as conn, conn.transaction():
            return await outbox_sql.renew(conn, consumers, self.owner, lease)

    async def release_outbox(self) -> None:
        """Give back every lease this store holds (unacked events become claimable at once)."""
        async with self._pool.connection() as conn, conn.transaction():
            await outbox_sql.release(conn, self.owner)

    async def pending_outbox(self) -> int:
        async with self._pool.connection() as conn:
            return await outbox_sql.pending_count(conn)

    async def works_by_state(self) -> dict[str, int]:
        """How many works wait for a report, are reported on, or are being deleted."""
        async with self._pool.connection() as conn:
            return await resource_sql.count_by_state(conn)

    async def outbox_backlog(self) -> tuple[int, float]:
        """Events waiting to be relayed, and the oldest one's age in seconds."""
        async with self._pool.connection() as conn:
            return await outbox_sql.backlog(conn)

    async def reachable(self) -> bool:
        """Whether the database answers now: a failure while it does is the item's own."""
        try:
            async with self._pool.connection(timeout=5) as conn:
                await conn.execute("SELECT 1")
        except Exception:
            return False
        return True

    # Quarantined events.

    async def settle_outbox(
        self,
        acked: Sequence[int],
        refused: Sequence[tuple[int, str]] = (),
        attempts: int = quarantine.DEFAULT_ATTEMPTS,
    ) -> int:
        """Drop the events Kafka acknowledged, count a refusal against each refused one (moving
        those refused ``attempts`` times to the quarantine) and give back this store's leases;
        returns how many were quarantined. Committed as a relay's transaction: one commit of it per
        relayed batch that waited for its WAL flush would queue the next publish's commit behind
        that flush; lost in a crash, its rows are published again (or refused once more)."""
        async with self._relay_transaction() as conn:
            return await quarantine_sql.settle_outbox(conn, acked, refused, self.owner, attempts)

    async def quarantine_statuses(self, held: Sequence[quarantine.StatusMessage]) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            await quarantine_sql.add_status(conn, held)

    async def quarantined(
        self, consumer: str = "", after: int = 0, limit: int = 500
    ) -> list[quarantine.Quarantined]:
        """Quarantined events after id ``after`` (of one consumer, or all), oldest first."""
        async with self._pool.connection() as conn:
            return await quarantine_sql.list_page(conn, consumer, after, limit)

    async def quarantine_counts(self) -> dict[quarantine.Kind, int]:
        async with self._pool.connection() as conn:
            return await quarantine_sql.counts(conn)

    async def retry_quarantined(
        self,
        selection: quarantine.Selection,
        send: Callable[[list[HeldMessage]], Awaitable[None]],
    ) -> quarantine.Retried:
        """Spec events back to the outbox; status events handed to ``send`` (which publishes them
        to their topics again) and deleted once it returns, in one transaction with it: a send that
        fails leaves them quarantined."""
        async with self._pool.connection() as conn, conn.transaction():
            spec, left = await quarantine_sql.retry_spec(conn, selection)
            held = await quarantine_sql.take_status(conn, selection)
            if held:
                await send(held)
        return quarantine.Retried(spec=spec, status=len(held), left=left)

    async def drop_quarantined(self, selection: quarantine.Selection) -> int:
        async with self._pool.connection() as conn, conn.transaction():
            return await quarantine_sql.drop(conn, selection)
