"""The ManifestBundleStatus an agent reports, built from apply outcomes and live objects (pure).

Called by the agent's loop (`agent_loop.Agent`) after every `Applier.apply`/`delete` and on every
status refresh (`Applier.observe` + `refreshed`): `apply_status` / `build_status` for a bundle in
place, `deleting_status` while a Foreground delete waits, `deleted_status` once it is done. The loop
publishes only when `status_hash` changed, tagging each report with `SequenceGenerator.next`.

Conditions follow OCM's ManifestWork (reasons upstream sources already understand):

| condition   | True                                      | False                       |
| ----------- | ----------------------------------------- | --------------------------- |
| Applied     | AppliedManifestWorkComplete               | AppliedManifestWorkFailed   |
| Available   | ResourcesAvailable (all exist)            | ResourcesNotAvailable       |
| Progressing | ApplyingManifests / DeletingManifests     | AppliedManifestWorkComplete |
| Degraded    | AppliedManifestFailed / ResourcesDegraded | ResourcesNotDegraded        |
| Deleted     | ManifestsDeleted                          | ManifestsDeleting           |

Messages name the manifests (kind namespace/name) and why. Each `resourceStatus` entry carries
`resourceMeta`, `statusFeedback` (see `feedback`) and the manifest's own Applied / Available /
StatusFeedbackSynced conditions. A condition keeps its `lastTransitionTime` from `previous` while
its status is unchanged, so an unchanged cluster yields an identical status and the same hash.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from kubeio.conditions import condition
from maestro.agent import feedback
from maestro.agent.applier import ApplyResult, DeleteResult, ManifestOutcome
from maestro.agent.manifests import (
    READ_ONLY,
    ManifestConfig,
    ManifestMeta,
    find_config,
    lenient_manifest_configs,
)
from maestro.agent.records import AppliedRecord

JsonObject = dict[str, Any]

APPLIED = "Applied"
AVAILABLE = "Available"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
DELETED = "Deleted"
FEEDBACK_SYNCED = "StatusFeedbackSynced"

_MAX_NAMED = 3  # a message names this many manifests, then says how many more


def build_status(
    version: int,
    outcomes: Sequence[ManifestOutcome],
    manifest_configs: Sequence[Mapping[str, Any]] = (),
    *,
    configs: Sequence[ManifestConfig] | None = None,
    errors: Sequence[str] = (),
    previous: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> JsonObject:
    """The status of a bundle at `version`: one resourceStatus entry per outcome, in ordinal order.
    Its feedback rules come from ``configs`` when given (an `AppliedRecord`'s, parsed once), else
    from ``manifest_configs`` as the bundle carries them."""
    stamp = _timestamp(now)
    if configs is None:
        configs = lenient_manifest_configs(manifest_configs)
    old_conditions = list((previous or {}).get("conditions") or ())
    old_manifests = {
        (m.get("resourceMeta") or {}).get("ordinal"): m for m in (previous or {}).get("resourceStatus") or ()
    }
    ordered = sorted(outcomes, key=lambda o: o.meta.ordinal)
    failed = [o for o in ordered if not o.applied]
    missing = [o for o in ordered if o.live is None]
    problems = [(o, p) for o in ordered if (p := feedback.problem(o.live))]

    def cond(ctype: str, ok: bool, reason: str, message: str) -> JsonObject:
        return condition(old_conditions, ctype, ok, reason, message, stamp, version)

    if failed or errors:
        applied = cond(APPLIED, False, "AppliedManifestWorkFailed", _failure_message(failed, errors))
        progressing = cond(
            PROGRESSING,
            True,
            "ApplyingManifests",
            f"{len(failed)} of {len(ordered)} manifests not applied yet",
        )
        degraded = cond(DEGRADED, True, "AppliedManifestFailed", _failure_message(failed, errors))
    else:
        applied = cond(APPLIED, True, "AppliedManifestWorkComplete", "Apply manifest work complete")
        progressing = cond(PROGRESSING, False, "AppliedManifestWorkComplete", "Apply manifest work complete")
        if problems:
            message = _names([f"{o.meta.describe()}: {p}" for o, p in problems])
            degraded = cond(DEGRADED, True, "ResourcesDegraded", message)
        else:
            degraded = cond(DEGRADED, False, "ResourcesNotDegraded", "No resource reports a problem")
    if missing:
        message = f"{len(missing)} of {len(ordered)} resources are not available: " + _names(
            [o.meta.describe() for o in missing]
        )
        available = cond(AVAILABLE, False, "ResourcesNotAvailable", message)
    else:
        available = cond(AVAILABLE, True, "ResourcesAvailable", "All resources are available")

    resource_status = [
        _manifest_status(o, find_config(configs, o.meta), old_manifests.get(o.meta.ordinal), stamp)
        for o in ordered
    ]
    return {"conditions": [applied, available, progressing, degraded], "resourceStatus": resource_status}


def apply_status(
    result: ApplyResult, *, previous: Mapping[str, Any] | None = None, now: datetime | None = None
) -> JsonObject:
    """`build_status` for what `Applier.apply` just returned."""
    configs = result.record.configs if result.record else ()
    return build_status(
        result.version, result.outcomes, configs=configs, errors=result.errors, previous=previous, now=now
    )


def observed_outcomes(
    record: AppliedRecord, live: Sequence[JsonObject | None]
) -> tuple[ManifestOutcome, ...]:
    """Outcomes rebuilt from a record and `Applier.observe` — after a restart nothing was applied
    in this process, but the record says the version was, so each manifest counts as applied."""
    configs = record.configs
    owned = {r.key for r in record.applied_resources}
    outcomes = []
    for meta, obj in zip(record.manifests, live, strict=True):
        config = find_config(configs, meta)
        strategy = config.strategy.type if config and config.strategy else ""
        outcomes.append(
            ManifestOutcome(
                meta=meta,
                applied=True,
                live=obj,
                strategy=strategy,
                owned=meta.key in owned and strategy != READ_ONLY,
            )
        )
    return tuple(outcomes)


def refreshed(
    outcomes: Sequence[ManifestOutcome], metas: Sequence[ManifestMeta], live: Sequence[JsonObject | None]
) -> tuple[ManifestOutcome, ...]:
    """The same outcomes with live objects from a later `observe` (aligned with `metas`)."""
    by_ordinal = {meta.ordinal: obj for meta, obj in zip(metas, live, strict=True)}
    return tuple(
        dataclasses.replace(o, live=by_ordinal[o.meta.ordinal]) if o.meta.ordinal in by_ordinal else o
        for o in outcomes
    )


def deleting_status(
    result: DeleteResult, *, previous: Mapping[str, Any] | None = None, now: datetime | None = None
) -> JsonObject:
    """While a Foreground delete waits for objects to go (finalizers, dependents)."""
    stamp = _timestamp(now)
    old_conditions = list((previous or {}).get("conditions") or ())
    waiting = [r.describe() for r in result.remaining]
    message = f"waiting for {len(waiting)} resources to be deleted: {_names(waiting)}" if waiting else ""
    message = "; ".join(m for m in (message, *result.errors) if m) or "deleting"
    kept = [c for c in old_conditions if c.get("type") not in (DELETED, PROGRESSING)]
    return {
        "conditions": [
            *kept,
            condition(old_conditions, PROGRESSING, True, "DeletingManifests", message, stamp, result.version),
            condition(old_conditions, DELETED, False, "ManifestsDeleting", message, stamp, result.version),
        ],
        "resourceStatus": list((previous or {}).get("resourceStatus") or ()),
    }


def deleted_status(
    result: DeleteResult | None = None,
    *,
    version: int | None = None,
    previous: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> JsonObject:
    """The final report for a bundle: `Deleted=True` (reason ManifestsDeleted), nothing left."""
    stamp = _timestamp(now)
    old_conditions = list((previous or {}).get("conditions") or ())
    generation = version if version is not None else (result.version if result else 0)
    if result is not None:
        message = f"Deleted {len(result.deleted)} resources"
        if result.orphaned:
            message += f", left {len(result.orphaned)} in place (orphaned)"
    else:
        message = "The manifests are deleted from the cluster"
    kept = [c for c in old_conditions if c.get("type") not in (DELETED, PROGRESSING)]
    return {
        "conditions": [
            *kept,
            condition(old_conditions, DELETED, True, "ManifestsDeleted", message, stamp, generation),
        ],
        "resourceStatus": [],
    }


def status_hash(status: Mapping[str, Any]) -> str:
    """sha256 hex of the status as compact, key-sorted JSON: equal statuses, equal hashes."""
    return hashlib.sha256(orjson.dumps(status, option=orjson.OPT_SORT_KEYS)).hexdigest()


class SequenceGenerator:
    """Status sequence ids: strictly increasing per resource, across restarts of the agent.

    Each id is the wall clock in nanoseconds, or one more than the last id handed out when the
    clock has not moved past it. A restarted agent starts above everything it sent before as
    long as the clock did not step back by more than the restart took; `observe` a sequence id
    known from elsewhere (e.g. the server's last accepted one) to be safe even then. One counter
    serves every resource, which keeps each resource's ids increasing and costs one integer.
    """

    def __init__(self, clock: Callable[[], int] = time.time_ns) -> None:
        self._clock = clock
        self._last = 0
        self._lock = threading.Lock()  # simulated agents may share one generator across threads

    def next(self, resource_id: str = "") -> int:
        with self._lock:
            self._last = max(self._clock(), self._last + 1)
            return self._last

    def observe(self, sequence_id: int) -> None:
        """Never hand out an id at or below `sequence_id` again."""
        with self._lock:
            self._last = max(self._last, sequence_id)


def _manifest_status(
    outcome: ManifestOutcome, config: ManifestConfig | None, previous: Mapping[str, Any] | None, stamp: str
) -> JsonObject:
    old = list((previous or {}).get("conditions") or ())
    if (previous or {}).get("resourceMeta") != outcome.meta.to_json():
        old = []  # a different object now sits at this ordinal: its history is not ours
    conditions = [
        condition(old, APPLIED, True, "AppliedManifestComplete", "Apply manifest complete", stamp)
        if outcome.applied
        else condition(old, APPLIED, False, "AppliedManifestFailed", outcome.error or "not applied", stamp)
    ]
    if outcome.live is None:
        conditions.append(
            condition(old, AVAILABLE, False, "ResourceNotAvailable", "Resource is not available", stamp)
        )
    else:
        conditions.append(
            condition(old, AVAILABLE, True, "ResourceAvailable", "Resource is available", stamp)
        )
    entry: JsonObject = {
        "resourceMeta": outcome.meta.to_json(),
        "statusFeedback": {},
        "conditions": conditions,
    }
    if config is not None and config.feedback_rules and outcome.live is not None:
        result = feedback.evaluate(config.feedback_rules, outcome.live)
        if result.values:
            entry["statusFeedback"] = {"values": list(result.values)}
        if result.errors:
            message = "; ".join(result.errors)
            conditions.append(
                condition(old, FEEDBACK_SYNCED, False, "StatusFeedbackSyncFailed", message, stamp)
            )
        else:
            conditions.append(condition(old, FEEDBACK_SYNCED, True, "StatusFeedbackSynced", "", stamp))
    return entry


def _failure_message(failed: Sequence[ManifestOutcome], errors: Sequence[str]) -> str:
    # Outcome errors already start with the manifest's name (kind namespace/name).
    parts = [o.error or f"{o.meta.describe()}: not applied" for o in failed]
    head = f"Failed to apply {len(failed)} manifests: " if failed else ""
    return head + _names([*parts, *errors])


def _names(items: Sequence[str]) -> str:
    shown = "; ".join(items[:_MAX_NAMED])
    return shown + (f"; and {len(items) - _MAX_NAMED} more" if len(items) > _MAX_NAMED else "")


def _timestamp(now: datetime | None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
