"""The exact outcome of a rollout, checked against what its clusters, Maestro and Kafka show.

Pure logic: the chaos tests gather a `Snapshot` (objects and applied records in each worker
cluster, every bundle as the query API lists it, every status report on the status topics, the
outbox's depth) and `judge` compares it with what the rollout's accepted calls asked for (one
`Intended` per work). What is not there yet is *pending* (waiting may settle it); what no amount
of waiting can undo is a *violation* (a duplicate, an object in the wrong cluster, a status
sequence id sent twice), and the wait stops at the first one.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from maestro.api import bundles

#: pending while the snapshot holds no status reports (the topics are read last: they are long)
TOPICS_UNREAD = "the status topics were not read"


@dataclasses.dataclass(frozen=True)
class Intended:
    """What the accepted calls leave one work as: a ConfigMap ``name`` in ``cluster``."""

    id: uuid.UUID
    cluster: str
    name: str
    #: the ConfigMap's ``revision`` in the last accepted create or update (1: as created)
    revision: int
    #: the spec version Maestro gives that revision (one more per update that changed the spec)
    version: int
    deleted: bool = False


@dataclasses.dataclass(frozen=True)
class LiveObject:
    """A ConfigMap of the rollout in a cluster: its uid and the work and revision its data names."""

    uid: str
    work: str
    revision: int


@dataclasses.dataclass(frozen=True)
class AppliedRecord:
    """An agent's applied record (AppliedBundle) of one resource at one version."""

    resource_id: str
    version: int
    #: (name, uid) of every ConfigMap the record owns
    owned: tuple[tuple[str, str], ...]


@dataclasses.dataclass(frozen=True)
class Stored:
    """A bundle as the query API lists it."""

    version: int
    status_version: int
    applied: bool
    sequence_id: int
    deleting: bool = False


def applied_record_of(record: Mapping[str, Any]) -> AppliedRecord:
    """An applied record (AppliedBundle) object as a cluster holds it."""
    owned = (record.get("status") or {}).get("appliedResources") or []
    return AppliedRecord(
        record["spec"]["resourceId"],
        record["spec"].get("version", 0),
        tuple((a["name"], a["uid"]) for a in owned if a.get("resource") == "configmaps"),
    )


def stored_of(listed: bundles.BundleRecord) -> Stored:
    """A bundle as the query API lists it."""
    status = listed.status
    return Stored(
        version=listed.bundle.version,
        status_version=listed.status_version,
        applied=status is not None
        and any(c.get("type") == "Applied" and c.get("status") == "True" for c in status.conditions),
        sequence_id=status.sequence_id if status is not None else 0,
        deleting=listed.bundle.deleting,
    )


@dataclasses.dataclass
class Snapshot:
    #: cluster -> ConfigMap name -> the live object
    objects: Mapping[str, Mapping[str, LiveObject]]
    #: cluster -> the rollout's applied records there
    records: Mapping[str, Sequence[AppliedRecord]]
    #: every bundle of the rollout the query API lists
    stored: Mapping[uuid.UUID, Stored]
    #: resource -> the status sequence ids sent for it on the status topics, in topic order (None:
    #: the topics were not read, which leaves the verdict pending)
    sent: Mapping[uuid.UUID, Sequence[int]] | None
    #: rows waiting in the outbox
    outbox: int


@dataclasses.dataclass
class Verdict:
    pending: list[str] = dataclasses.field(default_factory=list)
    violations: list[str] = dataclasses.field(default_factory=list)

    @property
    def exact(self) -> bool:
        return not self.pending and not self.violations

    def summary(self, limit: int = 15) -> str:
        parts = []
        for title, items in (("violations", self.violations), ("pending", self.pending)):
            if items:
                shown = "\n  ".join(items[:limit])
                more = f"\n  ... and {len(items) - limit} more" if len(items) > limit else ""
                parts.append(f"{title} ({len(items)}):\n  {shown}{more}")
        return "\n".join(parts) or "exact"


def judge(intended: Sequence[Intended], snapshot: Snapshot) -> Verdict:
    verdict = Verdict()
    by_name = {w.name: w for w in intended}
    by_id = {w.id: w for w in intended}
    for cluster, objects in snapshot.objects.items():
        for name in objects.keys() - by_name.keys():
            verdict.violations.append(f"{cluster}: ConfigMap {name} belongs to no work of the rollout")
    for cluster, records in snapshot.records.items():
        for (resource, version), n in Counter((r.resource_id, r.version) for r in records).items():
            if n > 1:
                verdict.violations.append(
                    f"{cluster}: {n} applied records of {resource} at version {version}"
                )
    for stray in snapshot.stored.keys() - by_id.keys():
        verdict.violations.append(f"the query API lists {stray}, which the rollout never created")
    for work in intended:
        _judge_objects(work, snapshot, verdict)
        if work.deleted:
            _judge_deleted(work, snapshot, verdict)
        else:
            _judge_live(work, snapshot, verdict)
    if snapshot.sent is None:
        verdict.pending.append(TOPICS_UNREAD)
    else:
        _judge_sequences(by_id, snapshot.stored, snapshot.sent, verdict)
    if snapshot.outbox:
        verdict.pending.append(f"{snapshot.outbox} rows left in the outbox")
    return verdict


def _judge_objects(work: Intended, snapshot: Snapshot, verdict: Verdict) -> None:
    for cluster, objects in snapshot.objects.items():
        if cluster != work.cluster and work.name in objects:
            verdict.violations.append(f"{work.name} of {work.cluster} is also in {cluster}")


def _records_of(work: Intended, snapshot: Snapshot) -> list[AppliedRecord]:
    return [r for r in snapshot.records.get(work.cluster, ()) if r.resource_id == str(work.id)]


def _judge_deleted(work: Intended, snapshot: Snapshot, verdict: Verdict) -> None:
    if work.name in snapshot.objects.get(work.cluster, {}):
        verdict.pending.append(f"{work.name} (deleted) is still in {work.cluster}")
    if _records_of(work, snapshot):
        verdict.pending.append(f"{work.name} (deleted) still has an applied record in {work.cluster}")
    if work.id in snapshot.stored:
        verdict.pending.append(f"{work.name} (deleted) is still listed by the query API")


def _judge_live(work: Intended, snapshot: Snapshot, verdict: Verdict) -> None:
    live = snapshot.objects.get(work.cluster, {}).get(work.name)
    if live is None:
        verdict.pending.append(f"{work.name} is missing from {work.cluster}")
    elif live.work != str(work.id):
        verdict.violations.append(f"{work.cluster}: {work.name} holds work {live.work}, not {work.id}")
    elif live.revision != work.revision:
        verdict.pending.append(f"{work.name} is at revision {live.revision}, expected {work.revision}")
    records = _records_of(work, snapshot)
    versions = sorted(r.version for r in records)
    if any(v > work.version for v in versions):
        verdict.violations.append(
            f"{work.name}: applied records at {versions}, beyond version {work.version}"
        )
    elif versions != [work.version]:
        verdict.pending.append(f"{work.name}: applied records at {versions}, expected one at {work.version}")
    elif live is not None and records[0].owned != ((work.name, live.uid),):
        verdict.pending.append(
            f"{work.name}: its record owns {list(records[0].owned)}, "
            f"expected the live object (uid {live.uid})"
        )
    stored = snapshot.stored.get(work.id)
    if stored is None:
        verdict.pending.append(f"{work.name} is not listed by the query API")
    elif stored.version != work.version:
        verdict.violations.append(f"{work.name} is at version {stored.version}, expected {work.version}")
    elif stored.status_version != work.version or not stored.applied:
        verdict.pending.append(
            f"{work.name}: status of version {stored.status_version} (applied: {stored.applied}) stored, "
            f"expected version {work.version} applied"
        )


def _judge_sequences(
    by_id: Mapping[uuid.UUID, Intended],
    stored: Mapping[uuid.UUID, Stored],
    sent: Mapping[uuid.UUID, Sequence[int]],
    verdict: Verdict,
) -> None:
    sent_twice = {s: n for s, n in Counter(s for ids in sent.values() for s in ids).items() if n > 1}
    if sent_twice:
        verdict.violations.append(
            f"status sequence ids sent more than once: {dict(list(sent_twice.items())[:5])}"
        )
    stored_twice = {
        s: n for s, n in Counter(s.sequence_id for s in stored.values() if s.sequence_id).items() if n > 1
    }
    if stored_twice:
        verdict.violations.append(f"status sequence ids stored for more than one bundle: {stored_twice}")
    for rid, ids in sent.items():
        name = by_id[rid].name if rid in by_id else str(rid)
        if list(ids) != sorted(ids):
            verdict.violations.append(f"{name}: status sequence ids sent out of order: {list(ids)}")
    for rid, held in stored.items():
        if held.sequence_id and held.sequence_id not in sent.get(rid, ()):
            name = by_id[rid].name if rid in by_id else str(rid)
            # The status topics are read after the query API: one not read yet shows up later.
            verdict.pending.append(f"{name}: stored status sequence {held.sequence_id} not seen sent")
