"""Status conditions of claims and composites: ``Synced`` (did the last reconcile succeed) and ``Ready``.

The operator calls these on the ``status.conditions`` it read and writes back the list they return;
nothing here mutates its input. ``lastTransitionTime`` moves only when a condition's status changes,
so ``kubectl describe`` shows since when something has been wrong, not when it was last looked at.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

Status = Literal["True", "False", "Unknown"]
STATUSES: tuple[Status, ...] = ("True", "False", "Unknown")

SYNCED = "Synced"
READY = "Ready"

# Reasons, as Crossplane names them, so users of both read the same words.
RECONCILE_SUCCESS = "ReconcileSuccess"
RECONCILE_ERROR = "ReconcileError"
AVAILABLE = "Available"
CREATING = "Creating"
UNAVAILABLE = "Unavailable"
DELETING = "Deleting"


def timestamp(now: datetime) -> str:
    """RFC 3339 in UTC with a ``Z``, to the second, as the API server writes times."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(
    conditions: Sequence[Mapping[str, Any]] | None,
    type: str,
    status: Status,
    reason: str,
    message: str,
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """``conditions`` with the one of ``type`` replaced (or appended), in the same order.

    ``lastTransitionTime`` is kept when the status did not change, even if the reason or message did.
    """
    if status not in STATUSES:
        raise ValueError(f"condition {type}: status {status!r} is not one of {', '.join(STATUSES)}")
    out: list[dict[str, Any]] = []
    found = False
    for existing in conditions or ():
        if existing.get("type") != type:
            out.append(dict(existing))
            continue
        found = True
        unchanged = existing.get("status") == status and existing.get("lastTransitionTime")
        out.append(
            _condition(
                type,
                status,
                reason,
                message,
                generation,
                str(existing["lastTransitionTime"]) if unchanged else timestamp(now),
            )
        )
    if not found:
        out.append(_condition(type, status, reason, message, generation, timestamp(now)))
    return out


def synced(
    conditions: Sequence[Mapping[str, Any]] | None,
    *,
    ok: bool,
    generation: int,
    now: datetime,
    message: str = "",
    reason: str = "",
) -> list[dict[str, Any]]:
    """``Synced=True`` (``ReconcileSuccess``) or ``Synced=False`` (``ReconcileError`` unless ``reason``)."""
    default_reason = RECONCILE_SUCCESS if ok else RECONCILE_ERROR
    return set_condition(
        conditions, SYNCED, "True" if ok else "False", reason or default_reason, message, generation, now
    )


def ready(
    conditions: Sequence[Mapping[str, Any]] | None,
    *,
    status: bool | None,
    generation: int,
    now: datetime,
    message: str = "",
    reason: str = "",
) -> list[dict[str, Any]]:
    """``Ready`` True (``Available``), False (``Creating`` unless ``reason``) or Unknown (``status=None``)."""
    if status is None:
        value: Status = "Unknown"
        default_reason = UNAVAILABLE
    elif status:
        value, default_reason = "True", AVAILABLE
    else:
        value, default_reason = "False", CREATING
    return set_condition(conditions, READY, value, reason or default_reason, message, generation, now)


def get(
    obj_or_conditions: Mapping[str, Any] | Sequence[Mapping[str, Any]], type: str
) -> dict[str, Any] | None:
    """The condition of ``type`` from an object (its ``status.conditions``) or from a list of conditions."""
    if isinstance(obj_or_conditions, Mapping):
        conditions = (obj_or_conditions.get("status") or {}).get("conditions") or []
    else:
        conditions = obj_or_conditions
    for condition in conditions:
        if condition.get("type") == type:
            return dict(condition)
    return None


def is_true(obj: Mapping[str, Any] | Sequence[Mapping[str, Any]], type: str) -> bool:
    """Whether ``obj`` (an object or a list of conditions) has condition ``type`` with status ``True``."""
    condition = get(obj, type)
    return condition is not None and condition.get("status") == "True"


def _condition(
    type: str,
    status: Status,
    reason: str,
    message: str,
    generation: int,
    last_transition: str,
) -> dict[str, Any]:
    return {
        "type": type,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": last_transition,
        "observedGeneration": generation,
    }
