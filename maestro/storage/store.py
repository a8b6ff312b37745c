"""`Store`: Maestro's state in PostgreSQL, one transaction per call.

Built by the server's wiring over a pool from `pool.open_pool` (after `migrations.migrate`);
used by the gRPC services (spec requests, queries, the status watch), the status ingester, the
outbox relay and the deletion reaper. Every method is safe to call from several replicas at once.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg_pool import AsyncConnectionPool

from maestro.api import bundles, consumers, errors, lifecycle, queries
from maestro.storage import consumer_sql, outbox_sql, resource_sql, status_sql

STATUS_CHANNEL = status_sql.STATUS_CHANNEL
OUTBOX_CHANNEL = resource_sql.OUTBOX_CHANNEL

OutboxEntry = outbox_sql.OutboxEntry
IngestResult = status_sql.IngestResult
StoredStatus = status_sql.StoredStatus

# Concurrent creates of one id both find no row to lock and race to insert; the loser retries
# and then sees the winner's row.
_INSERT_RETRIES = 3


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

    # Consumers.

    async def create_consumer(self, name: str, labels: Mapping[str, str] | None = None) -> consumers.Consumer:
        consumer = consumers.new_consumer(name, labels)
        async with self._pool.connection() as conn, conn.transaction():
            return await consumer_sql.create(conn, consumer, self._placement)

    async def get_consumer(self, name: str) -> consumers.Consumer:
        async with self._pool.connection() as conn:
            return await consumer_sql.get(conn, name)

    async def list_consumers(
        self,
        where: queries.ConsumerFilter | None = None,
        page_size: int = queries.DEFAULT_PAGE_SIZE,
        page_token: str = "",
    ) -> queries.Page[consumers.Consumer]:
        async with self._pool.connection() as conn:
            return await consumer_sql.list_page(
                conn, where or queries.ConsumerFilter(), queries.page_size(page_size), page_token
            )

    async def update_consumer_labels(self, name: str, labels: Mapping[str, str]) -> consumers.Consumer:
        checked = consumers.validate_labels(labels)
        async with self._pool.connection() as conn, conn.transaction():
            return await consumer_sql.update_labels(conn, name, checked)

    async def delete_consumer(self, name: str) -> None:
        async with self._pool.connection() as conn, conn.transaction():
            await consumer_sql.delete(conn, name)

    # Resource bundles: spec changes (each with its outbox row, in one transaction).

    async def apply_spec(self, request: bundles.SpecRequest, now: datetime | None = None) -> SpecResult:
        result = (await self.apply_specs([request], now))[0]
        if isinstance(result, errors.MaestroError):
            raise result
        return result

    async def apply_specs(
        self, requests: Sequence[bundles.SpecRequest], now: datetime | None = None
    ) -> list[SpecResult | errors.MaestroError]:
        """Apply a batch in one transaction: each request's result, or the error that refused it."""
        for attempt in range(_INSERT_RETRIES):
            try:
                async with self._pool.connection() as conn, conn.transaction():
                    plans = await resource_sql.apply_specs(conn, requests, now or datetime.now(UTC))
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
    ) -> queries.Page[bundles.BundleRecord]:
        async with self._pool.connection() as conn:
            return await resource_sql.list_page(
                conn, where or queries.ResourceFilter(), queries.page_size(page_size), page_token
            )

    async def count_resources(self, where: queries.ResourceFilter | None = None) -> int:
        async with self._pool.connection() as conn:
            return await resource_sql.count(conn, where or queries.ResourceFilter())

    async def list_resources_raw(
        self,
        where: queries.ResourceFilter | None = None,
        page_size: int = queries.DEFAULT_PAGE_SIZE,
        page_token: str = "",
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
                with_spec=with_spec,
                with_status=with_status,
            )

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

    async def ingest_statuses(self, batch: Sequence[bundles.StatusReport]) -> IngestResult:
        """Store a batch of agents' reports in one round trip, dropping stale ones in SQL."""
        if not batch:
            return IngestResult([], [])
        async with self._pool.connection() as conn, conn.pipeline():
            async with conn.transaction():
                cur = await status_sql.queue_ingest(conn, batch)
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

    # The outbox.

    async def claim_outbox(
        self, limit: int = 100, lease: timedelta = timedelta(seconds=30)
    ) -> list[OutboxEntry]:
        """Lease up to `limit` pending events, whole consumers at a time, in id order.

        Publish each consumer's events in the order given, then `ack_outbox` them in one call.
        """
        async with self._pool.connection() as conn, conn.transaction():
            return await outbox_sql.claim(conn, limit, self.owner, lease)

    async def ack_outbox(self, ids: Sequence[int]) -> None:
        """Drop published events and give back the leases of their consumers."""
        async with self._pool.connection() as conn, conn.transaction():
            await outbox_sql.ack(conn, ids, self.owner)

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
