"""Lifecycle rules of a resource bundle, as pure functions of the stored state and a request.

Storage calls `plan_spec` inside the transaction that holds the bundle's row lock, stores what
the plan says and writes the outbox row it names; `judge_status` is the rule storage's batch
ingest applies in SQL (its tests check the two agree); the server calls `confirms_deletion` to know
when an agent has removed a deleting bundle's manifests.
"""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime

from maestro.api import bundles, errors


class Outcome(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    # Nothing the agent needs changed (a retried create, an update with the same payload).
    UNCHANGED = "unchanged"
    DELETING = "deleting"
    ALREADY_DELETING = "already_deleting"


@dataclasses.dataclass(frozen=True, slots=True)
class SpecPlan:
    outcome: Outcome
    # The bundle as it must be stored.
    bundle: bundles.ResourceBundle
    # Whether the stored row changes at all (a metadata-only update stores without an event).
    store: bool
    # Whether a spec event for the agent goes to the outbox.
    emit: bool


def plan_spec(
    existing: bundles.ResourceBundle | None, request: bundles.SpecRequest, now: datetime
) -> SpecPlan:
    """What a create, update or delete request does to the stored bundle, or why it is refused."""
    if request.action is bundles.SpecAction.CREATE:
        return _plan_create(existing, request, now)
    if request.action is bundles.SpecAction.UPDATE:
        return _plan_update(existing, request, now)
    return _plan_delete(existing, request, now)


def _plan_create(
    existing: bundles.ResourceBundle | None, request: bundles.SpecRequest, now: datetime
) -> SpecPlan:
    spec = _require_spec(request)
    if existing is None:
        bundle = bundles.ResourceBundle(
            id=request.resource_id,
            consumer=request.consumer,
            source=request.source,
            version=1,
            manifests=spec.manifests,
            delete_option=spec.delete_option,
            manifest_configs=spec.manifest_configs,
            executer=spec.executer,
            metadata=request.metadata,
            created_at=now,
            updated_at=now,
        )
        return SpecPlan(Outcome.CREATED, bundle, store=True, emit=True)
    _check_owner(existing, request)
    if existing.deleting:
        raise _deleting(existing)
    if existing.spec != spec:
        raise errors.AlreadyExists(
            "resource bundle",
            str(existing.id),
            "with a different payload; send an update_request to change it",
        )
    # A retried create (the client did not see the first answer): nothing to do.
    return SpecPlan(Outcome.UNCHANGED, existing, store=False, emit=False)


def _plan_update(
    existing: bundles.ResourceBundle | None, request: bundles.SpecRequest, now: datetime
) -> SpecPlan:
    spec = _require_spec(request)
    if existing is None:
        raise errors.NotFound("resource bundle", str(request.resource_id))
    _check_owner(existing, request)
    if existing.deleting:
        raise _deleting(existing)
    if request.version not in (0, existing.version):
        raise errors.Conflict(
            f"resource bundle {existing.id} is at version {existing.version}, the update names "
            f"version {request.version}",
            "read the bundle again and update from its current version (or send version 0)",
        )
    if spec == existing.spec:
        if request.metadata == existing.metadata:
            return SpecPlan(Outcome.UNCHANGED, existing, store=False, emit=False)
        bundle = dataclasses.replace(existing, metadata=request.metadata, updated_at=now)
        return SpecPlan(Outcome.UNCHANGED, bundle, store=True, emit=False)
    bundle = dataclasses.replace(
        existing,
        version=existing.version + 1,
        manifests=spec.manifests,
        delete_option=spec.delete_option,
        manifest_configs=spec.manifest_configs,
        executer=spec.executer,
        metadata=request.metadata,
        updated_at=now,
    )
    return SpecPlan(Outcome.UPDATED, bundle, store=True, emit=True)


def _plan_delete(
    existing: bundles.ResourceBundle | None, request: bundles.SpecRequest, now: datetime
) -> SpecPlan:
    # No version check: a delete means "whatever it is now", as upstream treats it.
    if existing is None:
        raise errors.NotFound("resource bundle", str(request.resource_id))
    _check_owner(existing, request)
    if existing.deleting:
        return SpecPlan(Outcome.ALREADY_DELETING, existing, store=False, emit=False)
    bundle = dataclasses.replace(existing, deleted_at=now, updated_at=now)
    return SpecPlan(Outcome.DELETING, bundle, store=True, emit=True)


def _require_spec(request: bundles.SpecRequest) -> bundles.ManifestBundle:
    if request.spec is None:
        raise errors.InvalidArgument(
            "data",
            f"a {request.action} request carries no ManifestBundle",
            "send the manifests as JSON in the event data",
        )
    return request.spec


def _check_owner(existing: bundles.ResourceBundle, request: bundles.SpecRequest) -> None:
    if request.consumer and request.consumer != existing.consumer:
        raise errors.Conflict(
            f"resource bundle {existing.id} belongs to consumer {existing.consumer!r}, "
            f"not {request.consumer!r}",
            "a bundle cannot move between consumers: delete it and create a new one",
        )
    if request.source != existing.source:
        raise errors.Conflict(
            f"resource bundle {existing.id} belongs to source {existing.source!r}, not {request.source!r}",
            "only the source that created a bundle may change it",
        )


def _deleting(existing: bundles.ResourceBundle) -> errors.Conflict:
    return errors.Conflict(
        f"resource bundle {existing.id} is being deleted",
        "wait until the deletion completes, then create it again",
    )


class StatusVerdict(enum.StrEnum):
    ACCEPT = "accept"
    # Reported for a spec version older than the stored one.
    STALE_VERSION = "stale_version"
    # Not newer than the stored status: a duplicate or a reordered report.
    STALE_SEQUENCE = "stale_sequence"


def judge_status(
    *, current_version: int, stored_sequence: int | None, report_version: int, report_sequence: int
) -> StatusVerdict:
    if report_version < current_version:
        return StatusVerdict.STALE_VERSION
    if stored_sequence is not None and report_sequence <= stored_sequence:
        return StatusVerdict.STALE_SEQUENCE
    return StatusVerdict.ACCEPT


DELETED_CONDITION = "Deleted"
DELETED_REASON = "ManifestsDeleted"


def confirms_deletion(status: bundles.BundleStatus) -> bool:
    """Whether the agent reports it has removed everything it applied (Deleted=True)."""
    return any(c.get("type") == DELETED_CONDITION and c.get("status") == "True" for c in status.conditions)
