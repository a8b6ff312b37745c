"""Per-ApplicationSet status: conditions, ``applicationStatus``, the Application list and counts.

Called by the status aggregation controller (and the propagation handler after planning) with the
statuses of an ApplicationSet's hub Applications, the planning errors and, for RollingSync, the
rollout's per-Application statuses. The result uses Argo CD's ApplicationSet status shape
(``conditions`` with ErrorOccurred / ParametersGenerated / ResourcesUpToDate / RolloutProgressing,
``applicationStatus[]``, ``resources[]``, ``resourcesCount``). Counts by sync and by health status
go into the ResourcesUpToDate message (the CRD has no field for them, and unknown status fields
would be pruned) and are returned separately for metrics.

Timestamps come from ``now`` (given by the caller) and are carried over from ``previous`` while
an entry does not change, so an unchanged fleet produces an identical patch.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from controllers.status import aggregate
from kubeio.conditions import stamped

APPLICATION_GROUP, APPLICATION_VERSION = "argoproj.io", "v1alpha1"
#: entries of ``applicationStatus`` and ``resources``: each is ~200 bytes, and the whole object
#: must stay under etcd's request limit (1.5 MiB by default; 3,000 Applications listed in both
#: made 1.2 MB, so about 4,000 would not fit) and cheap to write: the hub's cost of a write grows
#: with the object's size, not the change's. With 1,000 listed, these writes were 13.5% of the hub
#: API server's CPU during a fleet-wide template change (and their watch events 11.5% of the
#: controllers' loop); the counts cover every Application whatever is listed.
MAX_LISTED = 250


@dataclasses.dataclass(frozen=True)
class AppEntry:
    """One Application of the ApplicationSet."""

    name: str
    #: the hub Application's ``status`` (``aggregate.application_status`` or as read from the hub)
    status: Mapping[str, Any] | None
    target_revisions: Sequence[str] = ()
    #: its RollingSync ``applicationStatus`` entry (``progressive_sync.Entry.to_json``), once it has one
    rollout: Mapping[str, Any] | None = None


@dataclasses.dataclass(frozen=True)
class Counts:
    total: int
    sync: Mapping[str, int]
    health: Mapping[str, int]

    def describe(self) -> str:
        def part(counts: Mapping[str, int]) -> str:
            return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"

        return f"{self.total} applications; sync: {part(self.sync)}; health: {part(self.health)}"


@dataclasses.dataclass(frozen=True)
class Rollup:
    status: dict[str, Any]
    counts: Counts


def application_set_status(
    namespace: str,
    apps: Sequence[AppEntry],
    *,
    now: str,
    target_errors: Sequence[str] = (),
    generation_error: str | None = None,
    rollout_progressing: bool | None = None,
    rollout_step: int | None = None,
    rollout_config_issue: str | None = None,
    previous: Mapping[str, Any] | None = None,
    max_listed: int = MAX_LISTED,
) -> Rollup:
    """The ApplicationSet ``status`` (a full replacement) and its counts.

    ``target_errors`` are the messages of the plan's per-target errors; ``generation_error`` is
    set when the generators failed as a whole; ``rollout_progressing`` and
    ``rollout_config_issue`` are ``None`` when no RollingSync strategy is set. The per-Application
    lists hold at most ``max_listed`` entries, those not Synced and Healthy first (the counts
    cover every Application).
    """
    ordered = sorted(apps, key=lambda a: a.name)
    listed = ordered
    if len(ordered) > max_listed:
        listed = sorted(
            ordered, key=lambda a: (_sync(a.status) == "Synced" and _health(a.status) == "Healthy", a.name)
        )
        listed = sorted(listed[:max_listed], key=lambda a: a.name)
    counts = Counts(
        total=len(ordered),
        sync=dict(collections.Counter(_sync(a.status) for a in ordered)),
        health=dict(collections.Counter(_health(a.status) for a in ordered)),
    )
    old_conditions = {
        c.get("type"): c for c in (previous or {}).get("conditions") or [] if isinstance(c, Mapping)
    }
    conditions = [
        stamped(c, old_conditions.get(c["type"]), now, ("status", "reason", "message"))
        for c in _conditions(
            counts, target_errors, generation_error, rollout_progressing, rollout_step, len(listed)
        )
        + _rollout_config(rollout_config_issue)
    ]
    old_apps = {
        a.get("application"): a
        for a in (previous or {}).get("applicationStatus") or []
        if isinstance(a, Mapping)
    }
    # Under RollingSync the entries are the rollout's own (with their transition times), and, as
    # in Argo CD, an Application gets one once it exists.
    rolling = rollout_progressing is not None
    application_status = [
        dict(a.rollout)
        if a.rollout
        else stamped(_app_status(a), old_apps.get(a.name), now, ("status", "step", "message"))
        for a in listed
        if a.rollout or not rolling
    ]
    resources = [
        {
            "group": APPLICATION_GROUP,
            "version": APPLICATION_VERSION,
            "kind": "Application",
            "namespace": namespace,
            "name": a.name,
            "status": _sync(a.status),
            "health": {"status": _health(a.status)},
        }
        for a in listed
    ]
    status = {
        "conditions": conditions,
        "applicationStatus": application_status,
        "resources": resources,
        "resourcesCount": len(ordered),
    }
    return Rollup(status, counts)


def _sync(status: Mapping[str, Any] | None) -> str:
    return str(((status or {}).get("sync") or {}).get("status") or aggregate.UNKNOWN)


def _health(status: Mapping[str, Any] | None) -> str:
    return str(((status or {}).get("health") or {}).get("status") or aggregate.UNKNOWN)


def _conditions(
    counts: Counts,
    target_errors: Sequence[str],
    generation_error: str | None,
    rollout_progressing: bool | None,
    rollout_step: int | None,
    listed: int,
) -> list[dict[str, Any]]:
    error_text = generation_error or _join_errors(target_errors)
    summary = counts.describe()
    if listed < counts.total:
        summary += f" (status lists {listed} of them: those not Synced and Healthy first)"
    conditions = [
        {
            "type": "ErrorOccurred",
            "status": "True" if error_text else "False",
            "reason": "ErrorOccurred" if error_text else "ApplicationSetUpToDate",
            "message": error_text or "All applications have been generated successfully",
        },
        {
            "type": "ParametersGenerated",
            "status": "False" if generation_error else "True",
            "reason": "ErrorOccurred" if generation_error else "ParametersGenerated",
            "message": generation_error or "Successfully generated parameters for all Applications",
        },
        {
            "type": "ResourcesUpToDate",
            "status": "False" if error_text else "True",
            "reason": "ErrorOccurred" if error_text else "ApplicationSetUpToDate",
            "message": f"{error_text}; {summary}" if error_text else summary,
        },
    ]
    if rollout_progressing is not None:
        conditions.append(
            {
                "type": "RolloutProgressing",
                "status": "True" if rollout_progressing else "False",
                "reason": "ApplicationSetModified"
                if rollout_progressing
                else "ApplicationSetRolloutComplete",
                "message": (
                    f"ApplicationSet is performing rollout of step {rollout_step}"
                    if rollout_progressing and rollout_step
                    else "ApplicationSet is performing a rollout"
                    if rollout_progressing
                    else "ApplicationSet Rollout has completed"
                ),
            }
        )
    return conditions


def _rollout_config(issue: str | None) -> list[dict[str, Any]]:
    """Argo CD's InvalidRolloutConfig condition, under RollingSync."""
    if issue is None:
        return []
    return [
        {
            "type": "InvalidRolloutConfig",
            "status": "True" if issue else "False",
            "reason": "ApplicationSetInvalidRolloutConfig" if issue else "ApplicationSetValidRolloutConfig",
            "message": issue or "Rolling Sync Configured correctly",
        }
    ]


def _join_errors(messages: Sequence[str], limit: int = 5) -> str:
    if not messages:
        return ""
    shown = "; ".join(messages[:limit])
    return shown + (f"; and {len(messages) - limit} more errors" if len(messages) > limit else "")


def _app_status(app: AppEntry) -> dict[str, Any]:
    entry: dict[str, Any] = {"application": app.name, "targetRevisions": list(app.target_revisions)}
    sync, health = _sync(app.status), _health(app.status)
    if sync == "Synced" and health == "Healthy":
        entry.update(status="Healthy", message="Application is Synced and Healthy")
    elif app.status is None or (sync == aggregate.UNKNOWN and health == aggregate.UNKNOWN):
        entry.update(status="Pending", message="waiting for the cluster to report status")
    else:
        entry.update(status="Progressing", message=f"Application is {sync} and {health}")
    entry["step"] = "1"
    return entry
