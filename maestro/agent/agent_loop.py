"""The agent's event loop: spec events in, applied state and status reports out.

Transport-neutral on purpose: ``Agent`` is handed its cluster's spec messages and a ``publish``
callable, so the real agent (one Kafka partition, one cluster) and the benchmark's simulated agents
(many agents sharing one Kafka client) run this same code over different appliers.

- On start it loads its applied records and asks the server for what changed (a spec resync).
- A spec event is applied unless the cluster already holds that version (re-deliveries are no-ops);
  a delete removes what the bundle applied and reports ``Deleted`` only when everything is gone.
- Status is published only when it changed (by hash), each report with a sequence id above every
  earlier one, so the server can drop stale reports.
- Objects change after they are applied (Argo CD syncs an Application, a Deployment rolls out):
  ``mark_changed`` is told which bundles changed (by a watch of the applied objects, see
  ``watcher``) and ``changes_forever`` re-reads just those, a moment later so a burst of events is
  one read. A periodic ``refresh`` of every bundle is the safety net (and the only source of
  changes for appliers nothing watches, such as the benchmark's in-memory one).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from maestro.agent import bundle_status
from maestro.agent.applier import Applier
from maestro.agent.records import AppliedRecord
from maestro.api import bundle_events, bundles, errors
from maestro.transport import cloudevents
from maestro.transport.messages import Incoming, Outgoing

log = logging.getLogger(__name__)

Publish = Callable[[Sequence[Outgoing]], Awaitable[None]]
# Told every record the applier holds, each time they may have changed (a watcher follows them).
Follow = Callable[[Iterable[AppliedRecord]], None]


@dataclass
class _Work:
    """What the agent remembers of one bundle between events."""

    version: int
    source: str
    status: dict[str, Any] | None = None
    hash: str = ""
    deleting: bool = False
    applied_ok: bool = False
    #: what the last refresh saw: (record version, each live object's uid and resourceVersion)
    observed: tuple[Any, ...] | None = None


@dataclass
class AgentStats:
    """What the agent did since it started (its Prometheus metrics are read from these)."""

    #: bundle versions applied, and those of them in which a manifest failed
    applied: int = 0
    failed: int = 0
    #: spec events of a version already applied (re-deliveries) or made stale meanwhile
    skipped: int = 0
    #: bundles whose deletion finished (everything they applied is gone)
    deleted: int = 0
    #: status reports Kafka acknowledged
    reports: int = 0
    #: spec events that do not parse, or are for another cluster
    rejected: int = 0
    bytes_read: int = 0
    messages_read: int = 0


class Agent:
    def __init__(
        self,
        applier: Applier,
        publish: Publish,
        *,
        status_topic: str,
        agent_id: str | None = None,
        sequences: bundle_status.SequenceGenerator | None = None,
        follow: Follow | None = None,
        on_apply: Callable[[float], None] | None = None,
    ) -> None:
        self.applier = applier
        self._follow = follow
        #: told how many seconds each apply took
        self._on_apply = on_apply
        self.consumer = applier.consumer
        self._publish = publish
        self._status_topic = status_topic
        self.agent_id = agent_id or f"agent-{self.consumer}"
        self._sequences = sequences or bundle_status.SequenceGenerator()
        self._works: dict[str, _Work] = {}
        self._lock = asyncio.Lock()
        self._changed: set[str] = set()
        self._changed_event = asyncio.Event()
        self.stats = AgentStats()

    async def start(self) -> None:
        """Load what this cluster holds and ask the server for everything newer (or deleted)."""
        await self.applier.start()
        records = await self.applier.load_records()
        versions: dict[uuid.UUID, int] = {}
        for rid, record in records.items():
            self._works[rid] = _Work(version=record.version, source="", applied_ok=record.version > 0)
            if record.version > 0:
                versions[uuid.UUID(rid)] = record.version
        self._followed()
        event = bundle_events.spec_resync_request_event(self.consumer, versions, source=self.agent_id)
        await self._publish([cloudevents.to_message(event, topic=self._status_topic, key=self.consumer)])

    def _followed(self) -> None:
        if self._follow is not None:
            self._follow(self.applier.records())

    async def handle(self, messages: Sequence[Incoming]) -> None:
        out: list[Outgoing] = []
        async with self._lock:
            for message in messages:
                self.stats.messages_read += 1
                self.stats.bytes_read += message.size
                try:
                    bundle = bundle_events.parse_spec_event(cloudevents.from_message(message))
                except errors.MaestroError as exc:
                    self.stats.rejected += 1
                    log.warning(
                        "%s: dropping a malformed spec event at offset %d: %s",
                        self.consumer,
                        message.offset,
                        exc,
                    )
                    continue
                if bundle.consumer != self.consumer:
                    self.stats.rejected += 1
                    continue
                report = await self._handle_bundle(bundle)
                if report is not None:
                    out.append(report)
            self._followed()
        await self._send(out)

    async def _send(self, reports: list[Outgoing]) -> None:
        if reports:
            await self._publish(reports)
            self.stats.reports += len(reports)

    @property
    def held(self) -> int:
        """Bundles this agent holds: applied, or being deleted."""
        return len(self._works)

    async def _handle_bundle(self, bundle: bundles.ResourceBundle) -> Outgoing | None:
        rid = str(bundle.id)
        work = self._works.get(rid)
        log.debug(
            "%s: %s v%d (deleting=%s), held %s", self.consumer, rid, bundle.version, bundle.deleting, work
        )
        if bundle.deleting:
            return await self._delete(rid, bundle, work)
        if work and work.applied_ok and work.version >= bundle.version:
            self.stats.skipped += 1
            if not work.source:
                work.source = bundle.source
            return None
        loop = asyncio.get_running_loop()
        started = loop.time()
        result = await self.applier.apply(rid, bundle.version, bundle.spec.to_json())
        if result.stale:
            self.stats.skipped += 1
            return None
        self.stats.applied += 1
        self.stats.failed += not result.ok
        if self._on_apply is not None:
            self._on_apply(loop.time() - started)
        work = self._works.setdefault(rid, _Work(version=bundle.version, source=bundle.source))
        work.version, work.source, work.applied_ok, work.deleting = (
            bundle.version,
            bundle.source,
            result.ok,
            False,
        )
        return self._report(rid, work, bundle_status.apply_status(result, previous=work.status))

    async def _delete(self, rid: str, bundle: bundles.ResourceBundle, work: _Work | None) -> Outgoing | None:
        result = await self.applier.delete(rid)
        work = work or _Work(version=bundle.version, source=bundle.source)
        work.deleting = True
        work.source = work.source or bundle.source
        self._works[rid] = work
        if result.done:
            self.stats.deleted += 1
            self._works.pop(rid, None)
            report = bundle_status.deleted_status(
                result, version=bundle.version or work.version, previous=work.status
            )
            return self._report(rid, work, report, force=True)
        return self._report(rid, work, bundle_status.deleting_status(result, previous=work.status))

    def _report(
        self, rid: str, work: _Work, status: dict[str, Any], *, force: bool = False
    ) -> Outgoing | None:
        work.observed = None  # a status from elsewhere (apply, delete): the next refresh builds anew
        digest = bundle_status.status_hash(status)
        if digest == work.hash and not force:
            return None
        work.status, work.hash = status, digest
        report = bundles.StatusReport(
            resource_id=uuid.UUID(rid),
            consumer=self.consumer,
            resource_version=work.version,
            status=bundles.BundleStatus(
                conditions=list(status.get("conditions") or []),
                resource_status=list(status.get("resourceStatus") or []),
                sequence_id=self._sequences.next(rid),
            ),
            original_source=work.source,
            status_hash=digest,
        )
        event = bundle_events.status_report_event(report, source=self.agent_id)
        return cloudevents.to_message(event, topic=self._status_topic, key=self.consumer)

    async def refresh(self, only: Iterable[str] | None = None) -> None:
        """Re-read applied objects (of every bundle, or of ``only`` these); report the works whose
        status changed; retry unfinished deletes."""
        out: list[Outgoing] = []
        async with self._lock:
            rids = list(self._works) if only is None else [rid for rid in only if rid in self._works]
            for rid in rids:
                work = self._works.get(rid)
                if work is None:
                    continue  # deleted by an earlier pass of this loop
                if work.deleting:
                    bundle = bundles.ResourceBundle(
                        id=uuid.UUID(rid),
                        consumer=self.consumer,
                        source=work.source,
                        version=work.version,
                        manifests=[],
                    )
                    report = await self._delete(rid, bundle, work)
                else:
                    report = await self._observe(rid, work)
                if report is not None:
                    out.append(report)
            self._followed()
        await self._send(out)

    def mark_changed(self, rids: set[str]) -> None:
        """Objects of these bundles changed in the cluster (called by a watch)."""
        self._changed |= rids
        self._changed_event.set()

    async def changes_forever(self, settle: float = 0.2) -> None:
        """Re-read the bundles ``mark_changed`` named, ``settle`` seconds after the first of a burst."""
        while True:
            await self._changed_event.wait()
            await asyncio.sleep(settle)
            self._changed_event.clear()
            rids, self._changed = self._changed, set()
            try:
                await self.refresh(rids)
            except asyncio.CancelledError:
                raise
            except Exception:
                # the periodic refresh will see these again
                log.exception("%s: reading changed objects failed", self.consumer)

    async def _observe(self, rid: str, work: _Work) -> Outgoing | None:
        record = self.applier.record(rid)
        if record is None or record.version == 0:
            return None
        live = await self.applier.observe(rid)
        # An object the API server still has at the same resourceVersion is the object last seen,
        # so the status built from it would be the one already reported: at 50 works per cluster
        # a refresh is mostly this check.
        seen = (record.version, *(_identity(obj) for obj in live))
        if seen == work.observed:
            return None
        outcomes = bundle_status.observed_outcomes(record, live)
        status = bundle_status.build_status(
            record.version, outcomes, configs=record.configs, previous=work.status
        )
        report = self._report(rid, work, status)
        work.observed = seen
        return report

    async def refresh_forever(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: status refresh failed; retrying next period", self.consumer)


def _identity(obj: Mapping[str, Any] | None) -> object:
    if obj is None:
        return None
    meta = obj.get("metadata") or {}
    version = meta.get("resourceVersion")
    # without a resourceVersion nothing says the object is unchanged: never equal to anything
    return (meta.get("uid"), version) if version else object()
