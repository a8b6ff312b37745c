"""What a propagation pass makes of the works Maestro holds: their diff entries, what a RollingSync
observes of them and the next group of a reverse-order deletion.

Called by ``controllers.propagation.convergence`` and the finalizer in
``controllers.propagation.controller``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from controllers import contract
from controllers.propagation import diff, identities, ownership, plan, progressive_sync, rollout
from controllers.status import aggregate
from maestro.api import bundles


def needs_manifests(strategy: rollout.Strategy) -> bool:
    """Whether a pass reads the works' manifests: only a reverse deletion order does (it groups the
    works by their Application's labels); everything else is in the works' metadata."""
    return strategy.deletion_order == "Reverse"


def existing(record: bundles.BundleRecord) -> diff.ExistingWork:
    meta = record.bundle.metadata
    annotations = ownership.work_annotations(meta)
    spec_hash = annotations.get(contract.ANNOTATION_SPEC_HASH)
    return diff.ExistingWork(
        work_id=str(record.bundle.id),
        cluster=record.bundle.consumer,
        name=str(meta.get("name") or ""),
        spec_hash=spec_hash,
        # A work without the hash (sent by something else) compares by its spec, when it was read.
        bundle=None if spec_hash or not record.bundle.manifests else record.bundle.spec.to_json(),
        deleting=record.bundle.deleting,
        sync_token=annotations.get(contract.ANNOTATION_ROLLOUT_SYNC) or None,
    )


def mirror_current(work: plan.DesiredWork, current: Mapping[str, Any] | None) -> bool:
    if current is None:
        return False
    return ownership.object_annotations(current).get(contract.ANNOTATION_MIRROR_HASH) == work.mirror_hash


def deletion_group(
    strategy: rollout.Strategy,
    deletes: Sequence[diff.ExistingWork],
    records: Sequence[bundles.BundleRecord],
    notes: list[str],
) -> list[diff.ExistingWork]:
    """The works to delete now: all of them, or under ``deletionOrder: Reverse`` the next group
    once the previous one is gone."""
    if strategy.deletion_order != "Reverse" or not deletes:
        return list(deletes)
    if any(r.bundle.deleting for r in records):
        notes.append("deletionOrder Reverse: waiting for the works being deleted to be gone")
        return []
    by_id = {str(r.bundle.id): r for r in records}
    apps = {w.work_id: _worker_app(by_id[w.work_id]) for w in deletes}
    groups = rollout.deletion_groups(strategy, list(apps.values()))
    first = set(groups[0]) if groups else set()
    return [w for w in deletes if apps[w.work_id][0] in first]


def _worker_app(record: bundles.BundleRecord) -> tuple[str, Mapping[str, str]]:
    """The worker Application's name and labels in a stored work (its only manifest)."""
    manifest = record.bundle.manifests[0] if record.bundle.manifests else {}
    meta = manifest.get("metadata") or {}
    return str(meta.get("name") or record.bundle.metadata.get("name") or ""), meta.get("labels") or {}


def observed(
    desired: plan.Plan, records: Mapping[str, bundles.BundleRecord]
) -> list[progressive_sync.Observed]:
    """Each desired Application as a RollingSync pass sees it: whether its work exists, whether
    its Application changed (its sync operation aside), and what its cluster last reported."""
    seen = []
    for work in desired.works:
        record = records.get(work.work_id)
        if record is None:
            seen.append(progressive_sync.Observed(work.application, work.labels, exists=False))
            continue
        held = existing(record)
        reported = record.status.to_json() if record.status is not None else None
        seen.append(
            progressive_sync.Observed(
                work.application,
                work.labels,
                exists=True,
                spec_changed=held.current_hash() != identities.with_sync(work.spec_hash, held.sync_token),
                reported=reported is not None and record.status_version == record.bundle.version,
                status=aggregate.application_status(reported, cluster=work.cluster),
                token=held.sync_token,
            )
        )
    return seen
