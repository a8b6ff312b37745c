"""Synced and Ready conditions: transitions, times, reasons.

Cases: a new condition gets the current time; the same status keeps its lastTransitionTime even when
the reason, message or generation change; a new status moves it; other conditions and their order
stay; the input is not modified; the synced/ready builders' default reasons; is_true on objects and
lists; a bad status is refused.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from provisioner import conditions

T0 = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)

READY_FALSE: dict[str, Any] = {
    "type": "Ready",
    "status": "False",
    "reason": "Creating",
    "message": "starting",
    "lastTransitionTime": "2026-11-23T12:00:00Z",
    "observedGeneration": 1,
}
OTHER: dict[str, Any] = {
    "type": "Bound",
    "status": "True",
    "reason": "Bound",
    "message": "",
    "lastTransitionTime": "t",
}

TRANSITIONS: list[tuple[str, list[dict[str, Any]], str, str]] = [
    ("new condition", [], "False", "2026-11-23T12:05:00Z"),
    ("same status keeps the time", [READY_FALSE], "False", "2026-11-23T12:00:00Z"),
    ("new status moves the time", [READY_FALSE], "True", "2026-11-23T12:05:00Z"),
    ("unknown is a status of its own", [READY_FALSE], "Unknown", "2026-11-23T12:05:00Z"),
]


@pytest.mark.parametrize(
    ("existing", "status", "when"), [c[1:] for c in TRANSITIONS], ids=[c[0] for c in TRANSITIONS]
)
def test_transitions(existing: list[dict[str, Any]], status: conditions.Status, when: str) -> None:
    out = conditions.set_condition(existing, "Ready", status, "Waiting", "still starting", 2, T1)
    assert out == [
        {
            "type": "Ready",
            "status": status,
            "reason": "Waiting",
            "message": "still starting",
            "lastTransitionTime": when,
            "observedGeneration": 2,
        }
    ]


def test_other_conditions_and_order_stay_and_input_is_untouched() -> None:
    existing = [OTHER, READY_FALSE]
    out = conditions.set_condition(existing, "Ready", "True", "Available", "", 3, T1)
    assert [c["type"] for c in out] == ["Bound", "Ready"]
    assert out[0] == OTHER
    assert existing[1]["status"] == "False"


@pytest.mark.parametrize(
    ("build", "want"),
    [
        (
            lambda: conditions.synced([], ok=True, generation=1, now=T0),
            ("Synced", "True", "ReconcileSuccess"),
        ),
        (
            lambda: conditions.synced([], ok=False, generation=1, now=T0, message="x"),
            ("Synced", "False", "ReconcileError"),
        ),
        (
            lambda: conditions.synced([], ok=False, generation=1, now=T0, reason="RenderFailed"),
            ("Synced", "False", "RenderFailed"),
        ),
        (lambda: conditions.ready([], status=True, generation=1, now=T0), ("Ready", "True", "Available")),
        (lambda: conditions.ready([], status=False, generation=1, now=T0), ("Ready", "False", "Creating")),
        (
            lambda: conditions.ready([], status=None, generation=1, now=T0),
            ("Ready", "Unknown", "Unavailable"),
        ),
        (
            lambda: conditions.ready([], status=False, generation=1, now=T0, reason=conditions.DELETING),
            ("Ready", "False", "Deleting"),
        ),
    ],
    ids=[
        "synced ok",
        "synced failed",
        "synced failed reason",
        "ready",
        "not ready",
        "ready unknown",
        "deleting",
    ],
)
def test_builders(build: Any, want: tuple[str, str, str]) -> None:
    (condition,) = build()
    assert (condition["type"], condition["status"], condition["reason"]) == want


def test_is_true() -> None:
    obj = {"status": {"conditions": conditions.ready([], status=True, generation=1, now=T0)}}
    assert conditions.is_true(obj, "Ready")
    assert not conditions.is_true(obj, "Synced")
    assert not conditions.is_true({"status": {}}, "Ready")
    assert not conditions.is_true([READY_FALSE], "Ready")


def test_naive_times_are_utc() -> None:
    assert conditions.timestamp(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05Z"


def test_bad_status_is_refused() -> None:
    with pytest.raises(ValueError, match="status 'yes' is not one of True, False, Unknown"):
        conditions.set_condition([], "Ready", "yes", "", "", 1, T0)  # type: ignore[arg-type]
