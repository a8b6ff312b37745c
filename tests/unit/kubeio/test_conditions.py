"""Kubernetes conditions: transitions, times, lookups.

Cases: a new condition gets the current time; the same status keeps its lastTransitionTime even when
the reason, message or generation change; a new status moves it; other conditions and their order
stay; the input is not modified; a stamp compared on more fields moves when any of them changes;
lookups by type on objects and lists; naive times are UTC; a bad status is refused.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubeio import conditions

T0 = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)
STAMP = conditions.timestamp(T1)

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
    out = conditions.set_condition(existing, "Ready", status, "Waiting", "still starting", STAMP, 2)
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
    out = conditions.set_condition(existing, "Ready", "True", "Available", "", STAMP, 3)
    assert [c["type"] for c in out] == ["Bound", "Ready"]
    assert out[0] == OTHER
    assert existing[1]["status"] == "False"


def test_a_bool_status_and_no_generation() -> None:
    assert conditions.condition([READY_FALSE], "Ready", False, "Creating", "still", STAMP) == {
        "type": "Ready",
        "status": "False",
        "reason": "Creating",
        "message": "still",
        "lastTransitionTime": "2026-11-23T12:00:00Z",
    }


@pytest.mark.parametrize(
    ("entry", "when"),
    [
        ({"status": "True", "reason": "Done", "message": "ok"}, "t0"),
        ({"status": "True", "reason": "Done", "message": "changed"}, "t1"),
        ({"status": "False", "reason": "Done", "message": "ok"}, "t1"),
    ],
)
def test_stamped_compares_the_fields_asked_for(entry: dict[str, Any], when: str) -> None:
    old = {"status": "True", "reason": "Done", "message": "ok", "lastTransitionTime": "t0"}
    assert conditions.stamped(entry, old, "t1", ("status", "reason", "message"))["lastTransitionTime"] == when


def test_lookups() -> None:
    obj = {"status": {"conditions": conditions.set_condition([], "Ready", "True", "", "", STAMP)}}
    assert conditions.has_status(conditions.find(conditions.of(obj), "Ready"), "True")
    assert not conditions.has_status(conditions.find(conditions.of(obj), "Synced"), "True")
    assert not conditions.has_status(conditions.find(conditions.of({"status": {}}), "Ready"), "True")
    assert not conditions.has_status(conditions.find([READY_FALSE], "Ready"), "True")
    assert conditions.describe(READY_FALSE) == "Creating: starting"
    assert conditions.describe(None) == "no details"


def test_naive_times_are_utc() -> None:
    assert conditions.timestamp(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05Z"


def test_bad_status_is_refused() -> None:
    with pytest.raises(ValueError, match="status 'yes' is not one of True, False, Unknown"):
        conditions.set_condition([], "Ready", "yes", "", "", STAMP, 1)  # type: ignore[arg-type]
