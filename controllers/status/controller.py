"""The Status Aggregation controller: Maestro work status -> hub Application and ApplicationSet status.

``controllers.operator`` starts ``StatusController.run`` when kopf starts and cancels it on exit.
It runs four loops:

- **follow**: lists every work of the propagation source once, then follows the query service's
  status watch from the list's token, reconnecting from the last token it saw after a disconnect
  (and listing again only if the server no longer understands the token);
- **safety net**: a full list every ``list_seconds`` (or less often, so that it stays a small share
  of the time: ``controllers.periodic``), in case a change was missed anyway;
- **rollup**: recomputes the status of every ApplicationSet whose facts or Application statuses
  changed (``book.StatusBook``), oldest change first, within a budget of bytes per second (an
  ApplicationSet of 3,000 Applications has a status of over a megabyte);
- **writer**: drains ``batching.WriteBatcher`` (coalesced, de-duplicated, rate-limited) and writes
  each status to the hub, a few at a time.

A status report is turned into the hub Application's status by ``aggregate.application_status``.
Reports are ordered by the agent's per-work sequence: an older one (a list answered while the
watch already delivered a newer one) is dropped. The propagation controller tells it (as its
``MirrorListener``) which status it wrote with each mirror, and asks it for the one to write, so a
status known before its mirror exists is written with it; while it is about to write a mirror
(``expect``), that mirror's statuses are kept for that write and it hears when the status of the
work's new spec came.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import typing
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from controllers import argocd_cache, contract, hub, periodic
from controllers import metrics as metrics_mod
from controllers.status import aggregate, batching, book
from maestro import client_errors
from maestro.api import bundles, listing, queries
from maestro.client import MaestroClient

log = logging.getLogger(__name__)

APPLICATION, APPLICATION_SET = "Application", "ApplicationSet"
#: a safety-net list that finds more newer statuses than this missing lists again with the statuses
READ_ONE_BY_ONE = 500
#: batcher keys: ``(kind, namespace, name)``
WriteKey = tuple[str, str, str]


@dataclasses.dataclass(frozen=True)
class StatusSettings:
    #: seconds between full lists (the safety net under the watch)
    list_seconds: float = 60.0
    #: hub API writes per second, and the burst allowed above it
    write_rate: float = 200.0
    write_burst: int = 400
    #: status writes in flight at once
    write_concurrency: int = 16
    #: seconds between two ApplicationSet rollups (changes in between are coalesced)
    rollup_seconds: float = 1.0
    #: bytes of ApplicationSet status written per second, over all of them: the hub's cost of a
    #: status write grows with its size (~100 KB for 250 Applications listed, the most listed), so
    #: large ApplicationSets are rolled up less often while their Applications change
    rollup_bytes_per_second: float = 64 * 1024
    #: seconds before reconnecting a broken watch
    reconnect_seconds: float = 2.0
    #: seconds a safety-net list gives the watch to deliver the statuses it found newer than those
    #: shown, before reading those still missing (while works change, the watch is a little behind)
    list_settle_seconds: float = 5.0
    #: resources a mirror lists (its status and its tree): Argo CD's own objects overflow etcd past
    #: a few thousand; a mirror cut short says so in a condition
    max_resources: int = 500


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _split(ref: str) -> tuple[str, str] | None:
    namespace, _, name = ref.partition("/")
    return (namespace, name) if namespace and name else None


class StatusController:
    def __init__(
        self,
        hub_client: hub.HubClient,
        maestro: MaestroClient,
        status_book: book.StatusBook,
        settings: StatusSettings = StatusSettings(),
        *,
        source: str = contract.MAESTRO_SOURCE,
        on_app_status: Callable[[book.AppSetKey], None] | None = None,
        metrics: metrics_mod.ControllerMetrics | None = None,
        trees: argocd_cache.TreeWriter | None = None,
    ) -> None:
        self.hub = hub_client
        #: where each mirror's resource tree goes for the hub's argocd-server (None: nowhere)
        self.trees = trees
        self.maestro = maestro
        self.book = status_book
        self.settings = settings
        self.source = source
        self.batcher = batching.WriteBatcher(rate=settings.write_rate, burst=settings.write_burst)
        self.metrics = metrics or metrics_mod.ControllerMetrics()
        self.metrics.status_writes_pending.set_function(lambda: len(self.batcher))
        #: called with an ApplicationSet whose Application statuses changed
        self.on_app_status = on_app_status
        self._offered = asyncio.Event()
        #: highest status sequence seen per work id (kept after deletion, to refuse a stale list)
        self._sequences: dict[str, int] = {}
        #: hub Application -> its ApplicationSet
        self._appset_of: dict[tuple[str, str], book.AppSetKey] = {}
        #: hub mirrors known to exist: a status is written only to those (one that arrives first
        #: is written with its mirror, by the propagation, instead of a patch answered 404)
        self._mirrors: set[tuple[str, str]] = set()
        #: spec version of the latest status per hub Application
        self._versions: dict[tuple[str, str], int] = {}
        #: mirrors the propagation is about to write, with the spec version a status must be newer
        #: than to be worth waiting for: their statuses go with that write, not in a patch of their own
        self._expected: dict[tuple[str, str], tuple[int, asyncio.Future[None]]] = {}
        self.token = ""
        self.writes = 0

    # --- the loops ---------------------------------------------------------------------------------

    async def run(self) -> None:
        """Run every loop until cancelled."""
        await self._prime()
        async with asyncio.TaskGroup() as group:
            group.create_task(self._follow(), name="status-follow")
            group.create_task(self._safety_net(), name="status-list")
            group.create_task(self._rollups(), name="status-rollup")
            group.create_task(self._writer(), name="status-writer")
            if self.trees is not None:
                group.create_task(self.trees.run(), name="status-trees")

    async def _prime(self) -> None:
        """Tell the batcher what the hub's mirrors already hold, so a restart does not rewrite every
        unchanged status (150,000 writes at the configured rate would take a long while)."""
        try:
            mirrors = await self.hub.list_all_applications(contract.LABEL_APPSET_NAME)
        except Exception as exc:
            log.warning("could not read the hub's mirrors to skip unchanged statuses: %s", exc)
            return
        for mirror in mirrors:
            meta, status = mirror.get("metadata") or {}, mirror.get("status")
            self._mirrors.add((meta.get("namespace", ""), meta.get("name", "")))
            if status:
                self.batcher.prime((APPLICATION, meta.get("namespace", ""), meta.get("name", "")), status)

    async def _follow(self) -> None:
        while True:
            try:
                if not self.token:
                    await self.list_once()
                async for change in self.maestro.watch(self.token, source=self.source):
                    self.observe_change(change)
                    self.token = change.resume_token
            except asyncio.CancelledError:
                raise
            except client_errors.MaestroCallError as exc:
                if isinstance(exc, client_errors.InvalidRequest):
                    self.token = ""  # the server does not know our token (a new database): list again
                log.warning("status watch broken (%s); resuming", exc)
                self.metrics.errors.labels("status-watch").inc()
            except Exception:
                log.exception("status watch failed; resuming")
                self.metrics.errors.labels("status-watch").inc()
            await asyncio.sleep(self.settings.reconnect_seconds)

    async def list_once(self, *, with_status: bool | None = None) -> int:
        """Observe every work of the source; keeps the list's watch token if none is held yet.

        Specs are never asked for, and each page is handled as it arrives, so a list of 150,000
        works holds one page in memory. Once a watch token is held (the periodic safety net),
        statuses are not asked for either: each work's status sequence says whether its status is
        newer than the one shown, and those the watch has still not delivered
        ``list_settle_seconds`` later are read, one by one (or, past ``READ_ONE_BY_ONE`` of them,
        by listing again with statuses). At fleet scale the statuses were most of each minute's
        list: ~150 MB for the server to send and this controller to receive, to find the few a
        broken watch might have missed."""
        if with_status is None:
            with_status = not self.token
        count, token, newer = 0, "", {}
        async for page in self.maestro.pages(
            queries.ResourceFilter(source=self.source), with_spec=False, with_status=with_status
        ):
            token = token or page.watch_resume_token
            for item in page.items:
                shown = self._sequences.get(item.id)
                if item.status_sequence and shown == item.status_sequence:
                    continue  # the report already shown: skipped before decoding anything
                if with_status or not item.status_sequence:
                    self.observe_record(item.record())
                elif item.status_sequence > (shown or 0):
                    newer[item.id] = item.status_sequence
            count += len(page.items)
            await asyncio.sleep(0)  # let the writer and the watch run during a long list
        if newer:
            await asyncio.sleep(self.settings.list_settle_seconds)
            missing = [w for w, sequence in newer.items() if self._sequences.get(w, 0) < sequence]
            if len(missing) > READ_ONE_BY_ONE:
                return await self.list_once(with_status=True)
            await self._read(missing)
        if not self.token:
            self.token = token
        return count

    async def _read(self, work_ids: list[str], concurrency: int = 8) -> None:
        """Observe these works whole (a work deleted meanwhile is skipped: the watch tells of it)."""
        gate = asyncio.Semaphore(concurrency)

        async def one(work_id: str) -> None:
            async with gate:
                try:
                    record = await self.maestro.get(uuid.UUID(work_id))
                except client_errors.NotFound:
                    return
            self.observe_record(record)

        await asyncio.gather(*(one(work_id) for work_id in work_ids))

    async def _safety_net(self) -> None:
        await periodic.run_periodically(
            self.list_once,
            self.settings.list_seconds,
            what="periodic status list",
            on_error=self.metrics.errors.labels("status-list").inc,
        )

    async def _rollups(self) -> None:
        budget = batching.TokenBucket(
            rate=self.settings.rollup_bytes_per_second, burst=self.settings.rollup_bytes_per_second
        )
        waiting: dict[book.AppSetKey, None] = {}  # oldest first
        while True:
            await asyncio.sleep(self.settings.rollup_seconds)
            self.rollup_once(waiting, budget)

    def rollup_once(self, waiting: dict[book.AppSetKey, None], budget: batching.TokenBucket) -> None:
        """Offer the status of the changed ApplicationSets, oldest change first, while the byte
        budget lasts; the others wait in ``waiting`` (coalescing their later changes)."""
        waiting.update(dict.fromkeys(self.book.take_dirty()))
        now = _now()
        for key in list(waiting):
            if budget.tokens <= 0:
                break
            del waiting[key]
            result = self.book.rollup(key, now=now)
            if result is not None and self._offer((APPLICATION_SET, *key), result.status):
                budget.spend(len(orjson.dumps(result.status)))

    async def _writer(self) -> None:
        """Keep up to ``write_concurrency`` writes in flight, topping up as each lands (a slow write
        holds one slot, not a whole round)."""
        limit = self.settings.write_concurrency
        pending: set[asyncio.Task[None]] = set()
        while True:
            writes = self.batcher.drain(limit=limit - len(pending)) if len(pending) < limit else []
            for one in writes:
                pending.add(asyncio.create_task(self._write(one)))
            if writes:
                continue
            self._offered.clear()
            waits: set[asyncio.Future[Any]] = set(pending)
            offered = asyncio.ensure_future(self._offered.wait())
            waits.add(offered)
            timeout = None
            if len(self.batcher) and len(pending) < limit:
                timeout = max(self.batcher.delay(), 0.01)  # rate-limited (or every key busy): retry soon
            try:
                done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            finally:
                # also when the writer is cancelled: a waiter left behind holds up the operator's
                # shutdown (kopf waits 5 s for tasks it did not start), and so the handover
                offered.cancel()
            pending -= done

    async def _write(self, one: batching.PendingWrite) -> None:
        kind, namespace, name = typing.cast(WriteKey, one.key)
        outcome = "written"
        try:
            if kind == APPLICATION:
                await self.hub.replace_application_status(namespace, name, one.patch)
            else:
                await self.hub.replace_application_set_status(namespace, name, one.patch)
        except hub.NotFoundError:
            # No object to write to (the mirror is gone). Count it as written, so the same status is
            # not retried in a loop: ``mirror_written`` offers it again if the mirror comes back,
            # which may have happened while this write was out (then it is still known).
            outcome = "gone"
            unsure = self.batcher.written(one)
            if kind == APPLICATION and not unsure:
                self._mirrors.discard((namespace, name))
        except hub.ClusterError as exc:
            if exc.status in (400, 422):
                # the hub refuses this status as invalid: retrying the same patch cannot help
                log.error("hub refused the status of %s %s/%s: %s", kind, namespace, name, exc)
                outcome = "refused"
                unsure = self.batcher.written(one)
            else:
                log.warning("writing the status of %s %s/%s failed: %s", kind, namespace, name, exc)
                outcome = "failed"
                unsure = self.batcher.failed(one)
        except Exception as exc:
            log.warning("writing the status of %s %s/%s failed: %s", kind, namespace, name, exc)
            outcome = "failed"
            unsure = self.batcher.failed(one)
        else:
            unsure = self.batcher.written(one)
            self.writes += 1
        self.metrics.status_writes.labels(kind, outcome).inc()
        if outcome != "written":
            self.metrics.errors.labels("status-write").inc()
        if unsure and kind == APPLICATION:
            # the propagation wrote the mirror while this write was out: write the latest again
            self._offer_latest(namespace, name)

    def _offer(self, key: WriteKey, status: Mapping[str, Any]) -> bool:
        """Queue a write; whether one was queued (not one equal to what the hub holds)."""
        if self.batcher.offer(key, status):
            self._offered.set()
            return True
        return False

    # --- observing Maestro ---------------------------------------------------------------------------

    def observe_record(self, record: bundles.BundleRecord) -> None:
        status = record.status
        self._observe(
            str(record.bundle.id),
            record.bundle.consumer,
            record.bundle.metadata,
            status.to_json() if status is not None else None,
            status.sequence_id if status is not None else 0,
            record.status_version,
            deleted=False,
        )

    def observe_change(self, change: listing.StatusUpdate) -> None:
        self._observe(
            change.resource_id,
            change.consumer,
            change.metadata(),
            change.status(),
            change.status_sequence,
            change.version,
            deleted=change.deletion is listing.DeletionState.DELETED,
        )

    def _observe(
        self,
        work_id: str,
        consumer: str,
        metadata: Mapping[str, Any],
        status: Mapping[str, Any] | None,
        sequence: int,
        version: int,
        *,
        deleted: bool,
    ) -> None:
        annotations = metadata.get("annotations") or {}
        application = _split(str(annotations.get(contract.ANNOTATION_HUB_APPLICATION, "")))
        appset = _split(str(annotations.get(contract.ANNOTATION_APPSET, "")))
        if application is None or appset is None:
            return  # not a work of the propagation controller
        self.metrics.status_updates.inc()
        if sequence < self._sequences.get(work_id, 0):
            return  # older than what we already showed
        self._sequences[work_id] = sequence
        key = (APPLICATION, *application)
        if deleted:
            self.batcher.forget(key)
            self.book.drop_app_status(appset, application[1])
            self._appset_of.pop(application, None)
            self._versions.pop(application, None)
            if self.trees is not None:
                self.trees.forget(*application)
            return
        cluster = str(annotations.get(contract.ANNOTATION_CLUSTER) or consumer)
        computed = aggregate.application_status(
            status, cluster=cluster, max_resources=self.settings.max_resources
        )
        if self.trees is not None:
            self.trees.offer(*application, cluster, computed.get("resources") or [])
        self._appset_of[application] = appset
        if status is not None:
            self._versions[application] = version
        expected = self._expected.get(application)
        if expected is not None:
            if status is not None and version > expected[0] and not expected[1].done():
                expected[1].set_result(None)
        elif application in self._mirrors:
            self._offer(key, computed)
        if self.book.set_app_status(appset, application[1], computed) and self.on_app_status:
            self.on_app_status(appset)

    # --- told by the propagation controller ----------------------------------------------------------

    def status_of(self, namespace: str, name: str) -> Mapping[str, Any] | None:
        """The status the mirror should carry now, when a report for it arrived."""
        appset = self._appset_of.get((namespace, name))
        return self.book.app_status(appset, name) if appset else None

    def expect(self, namespace: str, name: str, newer_than: int) -> asyncio.Future[None]:
        """The propagation is about to write this mirror after sending its work a spec newer than
        ``newer_than`` (0 for a new work): until it does (``mirror_written``) or gives up
        (``release``), statuses of this Application are kept for that write instead of patched on
        their own — one hub write instead of two. The future is done once a status reported for
        the new spec is known (the writer waits for it, for a bounded time)."""
        key = (namespace, name)
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._versions.get(key, 0) > newer_than:
            ready.set_result(None)
        self._stop_expecting(key)
        self._expected[key] = (newer_than, ready)
        return ready

    def _stop_expecting(self, key: tuple[str, str]) -> bool:
        """Forget that the propagation is about to write this mirror (ending its wait); whether it was."""
        expected = self._expected.pop(key, None)
        if expected is None:
            return False
        expected[1].cancel()
        return True

    def release(self, namespace: str, names: Iterable[str]) -> None:
        """The propagation will not write these mirrors after all (its pass failed or the target
        was refused): their statuses go out as patches again."""
        for name in names:
            if self._stop_expecting((namespace, name)):
                self._offer_latest(namespace, name)

    def mirror_written(self, namespace: str, name: str, status: Mapping[str, Any] | None) -> None:
        """The propagation created or updated the mirror carrying ``status`` (``None``: none, so
        whatever it held may be gone): remember that, and write the latest status if it differs."""
        self._stop_expecting((namespace, name))
        self._mirrors.add((namespace, name))
        self.batcher.overwritten((APPLICATION, namespace, name), status)
        self._offer_latest(namespace, name)

    def mirrors_seen(self, namespace: str, names: Iterable[str]) -> None:
        """Mirrors a propagation pass found on the hub (some may predate this process's list)."""
        for name in names:
            if (namespace, name) not in self._mirrors:
                self._mirrors.add((namespace, name))
                self._offer_latest(namespace, name)

    def _offer_latest(self, namespace: str, name: str) -> None:
        """Offer the mirror's latest status, unless the propagation is about to write it."""
        key = (namespace, name)
        latest = self.status_of(namespace, name)
        if latest is not None and key in self._mirrors and key not in self._expected:
            self._offer((APPLICATION, namespace, name), latest)

    def mirror_deleted(self, namespace: str, name: str) -> None:
        self._mirrors.discard((namespace, name))
        self._versions.pop((namespace, name), None)
        self.batcher.forget((APPLICATION, namespace, name))
        appset = self._appset_of.pop((namespace, name), None)
        if appset is not None:
            self.book.drop_app_status(appset, name)
        if self.trees is not None:
            self.trees.forget(namespace, name)
