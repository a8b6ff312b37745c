"""Status conditions of claims and composites: ``Synced`` (did the last reconcile succeed) and ``Ready``.

The operator calls these on the ``status.conditions`` it read and writes back the list they return;
the transition rules (``lastTransitionTime`` kept while the status holds) are ``kubeio.conditions``'.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from kubeio import conditions as kube_conditions

SYNCED = "Synced"
READY = "Ready"

# Reasons, as Crossplane names them, so users of both read the same words.
RECONCILE_SUCCESS = "ReconcileSuccess"
RECONCILE_ERROR = "ReconcileError"
AVAILABLE = "Available"
CREATING = "Creating"
UNAVAILABLE = "Unavailable"
DELETING = "Deleting"


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
    return kube_conditions.set_condition(
        conditions,
        SYNCED,
        "True" if ok else "False",
        reason or default_reason,
        message,
        stamp=kube_conditions.timestamp(now),
        generation=generation,
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
    value: kube_conditions.Status
    if status is None:
        value, default_reason = "Unknown", UNAVAILABLE
    elif status:
        value, default_reason = "True", AVAILABLE
    else:
        value, default_reason = "False", CREATING
    return kube_conditions.set_condition(
        conditions,
        READY,
        value,
        reason or default_reason,
        message,
        stamp=kube_conditions.timestamp(now),
        generation=generation,
    )
