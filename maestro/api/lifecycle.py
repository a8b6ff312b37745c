"""Lifecycle rules of a resource bundle, as pure functions of the stored state and a request.

Storage calls `plan_spec` inside the transaction that holds the bundle's row lock, stores what
the plan says and writes the outbox row it names; `judge_status` is the rule storage's batch
ingest applies in SQL (its tests check the two agree); the server calls `confirms_deletion` to know
when an agent has removed a deleting bundle's manifests.
"""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime, timedelta

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


# Status sequence ids are time-based: an agent's are its wall clock in nanoseconds since the epoch
# (agent.bundle_status.SequenceGenerator: the clock, or one more than the last id when the clock has not
# moved), and so is the deletion reaper's. Storage keeps a report only if its sequence is above the
# stored one, so a single report with a sequence far ahead (2^63-1, or an agent whose clock ran
# years fast) would freeze the status: every later, real report would look stale. No agent with
# a sane clock sends a sequence beyond the server's clock plus the skew between the two clocks, so
# a report further ahead than `DEFAULT_SEQUENCE_AHEAD` is refused, and a stored sequence beyond
# that bound (kept before the rule existed, or under a wider margin) no longer holds reports off.
# What the margin costs: a bad report within it holds real ones off for at most the margin, and
# an agent whose clock runs fast by more than it has its reports refused (with a message saying
# so) until its clock is set right. Counters would not do: an agent restarts from its clock, not
# from a counter it would have to keep. Upstream's agents send snowflake ids (milliseconds since
# 2010 shifted left 22 bits, today above a nanosecond clock) and this bound refuses them; they do
# not report here (agents report over Kafka, in fleetplane's layout).
DEFAULT_SEQUENCE_AHEAD = timedelta(minutes=5)
_INT64_MAX = (1 << 63) - 1


def sequence_limit(now_ns: int, ahead: timedelta = DEFAULT_SEQUENCE_AHEAD) -> int:
    """The highest sequence id a report may carry when the server's clock reads `now_ns`."""
    return min(now_ns + ahead // timedelta(microseconds=1) * 1000, _INT64_MAX)


def check_sequence(sequence: int, *, now_ns: int, ahead: timedelta = DEFAULT_SEQUENCE_AHEAD) -> int:
    if sequence > sequence_limit(now_ns, ahead):
        beyond = timedelta(microseconds=(sequence - now_ns) // 1000)
        raise errors.InvalidArgument(
            "sequenceid",
            f"{sequence} is {_span(beyond)} ahead of the server's clock, more than the "
            f"{_span(ahead)} allowed",
            "sequence ids are the agent's clock in nanoseconds since the epoch: "
            "set the agent's clock right (NTP)",
        )
    return sequence


def _span(value: timedelta) -> str:
    seconds = value.total_seconds()
    if seconds >= 2 * 86400 * 365:
        return f"{seconds / (86400 * 365.25):.0f} years"
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.0f} days"
    return f"{seconds:.0f}s"


class StatusVerdict(enum.StrEnum):
    ACCEPT = "accept"
    # Reported for a spec version older than the stored one.
    STALE_VERSION = "stale_version"
    # Reported for a spec version the server never gave out (not yet, or for a bundle deleted and
    # created again under the same id): no agent applied it.
    UNKNOWN_VERSION = "unknown_version"
    # Not newer than the stored status: a duplicate or a reordered report.
    STALE_SEQUENCE = "stale_sequence"
    # Beyond `sequence_limit` (the ingester refuses these before storage sees them).
    FUTURE_SEQUENCE = "future_sequence"


def judge_status(
    *,
    current_version: int,
    stored_sequence: int | None,
    report_version: int,
    report_sequence: int,
    max_sequence: int = _INT64_MAX,
) -> StatusVerdict:
    if report_version < current_version:
        return StatusVerdict.STALE_VERSION
    if report_version > current_version:
        return StatusVerdict.UNKNOWN_VERSION
    if report_sequence > max_sequence:
        return StatusVerdict.FUTURE_SEQUENCE
    # A stored sequence beyond the limit is not to be trusted: it must not freeze the status.
    if stored_sequence is not None and report_sequence <= stored_sequence <= max_sequence:
        return StatusVerdict.STALE_SEQUENCE
    return StatusVerdict.ACCEPT


DELETED_CONDITION = "Deleted"
DELETED_REASON = "ManifestsDeleted"


def confirms_deletion(status: bundles.BundleStatus) -> bool:
    """Whether the agent reports it has removed everything it applied (Deleted=True)."""
    return any(c.get("type") == DELETED_CONDITION and c.get("status") == "True" for c in status.conditions)
