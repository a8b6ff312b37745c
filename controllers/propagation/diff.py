"""What to send to Maestro to reach a plan: creates, updates, deletes, and what to leave alone.

Called by the propagation pass (``convergence``) with ``plan.plan_application_set``'s result and the works
Maestro holds for the ApplicationSet (listed by its labels), at start and after every change, so
the controller repairs level-based: a missed event, a restart or a manual edit is put right on
the next pass. Works are matched by their deterministic names; a spec hash (the
``fleetplane.io/spec-hash`` annotation, or the bundle itself) says whether one is out of date.

What is not changed, and why, is reported in ``WorkDiff.notes``: ``syncPolicy.applicationsSync``
(``create-only``, ``create-update``, ``create-delete``) forbids it, a work is still being deleted,
or a target failed to render so that no orphan can be told apart from it (Argo CD also deletes
nothing while generation or validation fails).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from controllers.propagation import identities, plan


@dataclasses.dataclass(frozen=True)
class ExistingWork:
    """A work this ApplicationSet owns in Maestro (the caller filters by the appset labels)."""

    work_id: str
    cluster: str
    name: str
    #: the ``fleetplane.io/spec-hash`` annotation, if the store returns metadata only
    spec_hash: str | None = None
    #: the ManifestBundle spec, if the store returns it (used when there is no hash)
    bundle: Mapping[str, Any] | None = None
    #: soft-deleted in Maestro, waiting for the agent to confirm
    deleting: bool = False
    #: the RollingSync operation its Application carries (``fleetplane.io/rollout-sync``)
    sync_token: str | None = None

    def current_hash(self) -> str | None:
        if self.spec_hash:
            return self.spec_hash
        return identities.spec_hash(self.bundle) if self.bundle is not None else None


@dataclasses.dataclass(frozen=True)
class WorkDiff:
    creates: tuple[plan.DesiredWork, ...] = ()
    updates: tuple[tuple[plan.DesiredWork, ExistingWork], ...] = ()
    deletes: tuple[ExistingWork, ...] = ()
    unchanged: tuple[plan.DesiredWork, ...] = ()
    #: existing works left alone because their target failed to plan or is being deleted
    held: tuple[ExistingWork, ...] = ()
    #: hub mirrors (names) that no longer have a target
    mirror_deletes: tuple[str, ...] = ()
    #: why some creates/updates/deletes were not made (policy, errors, pending deletion)
    notes: tuple[str, ...] = ()


def diff(
    desired_plan: plan.Plan, existing: Iterable[ExistingWork], existing_mirrors: Iterable[str] = ()
) -> WorkDiff:
    """What to send to Maestro (and which hub mirrors to delete) to reach ``desired_plan``.

    ``existing`` are the works Maestro holds for this ApplicationSet, ``existing_mirrors`` the names
    of the hub Applications it owns.
    """
    by_name = {(w.cluster, w.name): w for w in existing}
    desired = {(w.cluster, w.work_name): w for w in desired_plan.works}
    errored = {
        (e.cluster, e.application)
        for e in desired_plan.errors
        if e.cluster and e.application and not e.blocks_deletes
    }
    allow_update = desired_plan.policy in ("sync", "create-update")
    allow_delete = desired_plan.policy in ("sync", "create-delete")
    blocked = [e for e in desired_plan.errors if e.blocks_deletes]
    notes: list[str] = []
    creates, updates, unchanged, held = [], [], [], []
    for key, work in desired.items():
        current = by_name.get(key)
        if current is None:
            creates.append(work)
        elif current.deleting:
            held.append(current)
            notes.append(
                f"{work.cluster}/{work.work_name}: still being deleted; "
                "it is re-created once the agent confirms"
            )
        elif current.current_hash() == work.spec_hash:
            unchanged.append(work)
        elif allow_update:
            updates.append((work, current))
        else:
            unchanged.append(work)
            notes.append(
                f"{work.cluster}/{work.work_name}: out of date, "
                f"not updated (applicationsSync: {desired_plan.policy})"
            )

    erroring_names = {
        (cluster, identities.work_name(desired_plan.appset_namespace, desired_plan.appset_name, cluster, app))
        for cluster, app in errored
        if cluster and app
    }
    deletes = []
    for key, current in by_name.items():
        if key in desired or current.deleting:
            continue
        if key in erroring_names or blocked:
            held.append(current)
        elif allow_delete:
            deletes.append(current)
        else:
            held.append(current)
            notes.append(
                f"{current.cluster}/{current.name}: no longer generated, "
                f"kept (applicationsSync: {desired_plan.policy})"
            )
    if blocked and any(k not in desired and not w.deleting for k, w in by_name.items()):
        notes.append(
            f"no works deleted: {len(blocked)} parameter set(s) failed to render or validate, so it is "
            "unknown which targets they stand for; fix the errors first"
        )
    wanted_mirrors = {w.application for w in desired_plan.works} | {a for _, a in errored if a}
    mirror_deletes = (
        ()
        if blocked or not allow_delete
        else tuple(sorted(m for m in set(existing_mirrors) if m not in wanted_mirrors))
    )
    return WorkDiff(
        creates=tuple(creates),
        updates=tuple(updates),
        deletes=tuple(deletes),
        unchanged=tuple(unchanged),
        held=tuple(held),
        mirror_deletes=mirror_deletes,
        notes=tuple(notes),
    )
