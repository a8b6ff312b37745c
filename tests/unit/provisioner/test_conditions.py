"""Synced and Ready conditions: the builders' types, statuses and default reasons (the transition
rules are ``kubeio.conditions``', tested with it)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from provisioner import conditions

T0 = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


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
