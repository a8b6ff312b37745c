"""Kubernetes status conditions (``type``, ``status``, ``reason``, ``message``, ``lastTransitionTime``).

Pure: callers pass the conditions they read and write back what these return; nothing here mutates
its input or reads a clock. ``lastTransitionTime`` moves only when a condition's status changes,
so a status rewritten with nothing new is identical to the last one (no write, the same hash) and
``kubectl describe`` shows since when something has been so, not when it was last looked at.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

Status = Literal["True", "False", "Unknown"]
STATUSES: tuple[Status, ...] = ("True", "False", "Unknown")


def timestamp(now: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, to the second, as the API server writes times (naive is UTC)."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def of(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """An object's ``status.conditions``."""
    return list((obj.get("status") or {}).get("conditions") or [])


def find(conditions: Iterable[Mapping[str, Any]] | None, type: str) -> Mapping[str, Any] | None:
    """The condition of ``type``, or None."""
    return next((c for c in conditions or () if c.get("type") == type), None)


def has_status(condition: Mapping[str, Any] | None, status: str) -> bool:
    return condition is not None and condition.get("status") == status


def describe(condition: Mapping[str, Any] | None) -> str:
    """``reason: message`` (or whichever of them is set) for a message naming why."""
    if not condition:
        return "no details"
    reason, message = condition.get("reason") or "", condition.get("message") or ""
    return f"{reason}: {message}" if reason and message else reason or message or "no details"


def stamped(
    entry: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    stamp: str,
    compared: Sequence[str] = ("status",),
) -> dict[str, Any]:
    """``entry`` with a ``lastTransitionTime``: ``previous``'s when none of the ``compared`` fields
    changed, else ``stamp``."""
    unchanged = (
        previous is not None
        and all(previous.get(key) == entry.get(key) for key in compared)
        and previous.get("lastTransitionTime")
    )
    return {
        **entry,
        "lastTransitionTime": previous["lastTransitionTime"] if unchanged and previous else stamp,
    }


def condition(
    previous: Iterable[Mapping[str, Any]] | None,
    type: str,
    status: Status | bool,
    reason: str,
    message: str,
    stamp: str,
    generation: int | None = None,
) -> dict[str, Any]:
    """The condition of ``type`` as it is now (``status`` True/False may be a bool), keeping the
    ``lastTransitionTime`` of the one of ``previous`` while its status is unchanged (even if the
    reason or message changed)."""
    if isinstance(status, bool):
        status = "True" if status else "False"
    if status not in STATUSES:
        raise ValueError(f"condition {type}: status {status!r} is not one of {', '.join(STATUSES)}")
    entry = {"type": type, "status": status, "reason": reason, "message": message}
    out = stamped(entry, find(previous, type), stamp)
    if generation is not None:
        out["observedGeneration"] = generation
    return out


def set_condition(
    conditions: Sequence[Mapping[str, Any]] | None,
    type: str,
    status: Status,
    reason: str,
    message: str,
    stamp: str,
    generation: int | None = None,
) -> list[dict[str, Any]]:
    """``conditions`` with the one of ``type`` replaced (or appended), in the same order."""
    new = condition(conditions, type, status, reason, message, stamp, generation)
    out = [new if c.get("type") == type else dict(c) for c in conditions or ()]
    return out if any(c.get("type") == type for c in conditions or ()) else [*out, new]
