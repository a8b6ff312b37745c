"""The demo's hold: ``--hold`` reads durations as kubectl writes them and refuses anything else
naming the fix; the announcement says until when and how to end it sooner; the wait ends when the
time is up or at once when a process dies."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from fleetplane.demo import hold
from localinfra import process


@pytest.mark.parametrize(
    ("text", "seconds"), [("30m", 1800), ("1h30m", 5400), ("90s", 90), ("2h", 7200), ("0", 0), (" 5M ", 300)]
)
def test_durations(text: str, seconds: float) -> None:
    assert hold.parse(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "m", "30 m", "-5m", "1d", "30mins", "1.5h"])
def test_a_bad_duration_says_how_to_write_one(text: str) -> None:
    with pytest.raises(hold.BadDuration, match="write it as 30m, 1h30m or 90s"):
        hold.parse(text)


def test_the_announcement_says_until_when_and_how_to_stop() -> None:
    line = hold.announcement(1800, datetime(2026, 1, 2, 10, 45, tzinfo=UTC))
    assert "until 11:15 UTC (0:30:00;" in line
    assert "press Ctrl-C to run `pulumi destroy`" in line


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_hold_ends_when_its_time_is_up() -> None:
    clock = _Clock()
    assert hold.wait(12, list, clock=clock, sleep=clock.sleep) == []
    assert clock.now == 12


def test_a_dead_process_ends_the_hold_at_once(tmp_path: Path) -> None:
    clock = _Clock()
    died = process.ProcessRecord("hub/controllers", 1, 1, (), str(tmp_path / "controllers.log"))
    assert hold.wait(1800, lambda: [died] if clock.now >= 10 else [], clock=clock, sleep=clock.sleep) == [
        died
    ]
    assert clock.now == 10
