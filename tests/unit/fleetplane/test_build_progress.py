"""How a cold build shows its steps.

Cases: away from a terminal (CI, tests, a pipe) the plain ``[fleetplane] ...`` lines, start and end
(and FAILED), with heartbeats; at a terminal a live display that is told each step's start with its
estimate and its end, needs no heartbeat, and prints what ended.
"""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from fleetplane import build_progress
from localinfra import progress


def test_away_from_a_terminal_the_plain_lines() -> None:
    with build_progress.reporter() as report:
        assert report is progress.stderr_reporter
    lines: list[str] = []
    with progress.step(lines.append, "building etcd", estimate=240):
        progress.heartbeat(lines.append, "[fleetplane]   ... go build: 60s so far")
    with pytest.raises(RuntimeError), progress.step(lines.append, "building kube"):
        raise RuntimeError("boom")
    assert lines[0] == "[fleetplane] building etcd ..."
    assert lines[1] == "[fleetplane]   ... go build: 60s so far"
    assert lines[2].startswith("[fleetplane] building etcd done in ")
    assert lines[3] == "[fleetplane] building kube ..."
    assert lines[4].startswith("[fleetplane] building kube FAILED after ")


def test_at_a_terminal_a_display_of_the_running_steps() -> None:
    screen = io.StringIO()
    display = build_progress.RichSteps(Console(file=screen, force_terminal=True, width=120))
    assert isinstance(display, progress.StepDisplay)
    with display.shown():
        with progress.step(display, "building etcd", estimate=240):
            progress.heartbeat(display, "a heartbeat")
            (task,) = display._progress.tasks
            assert task.description == "building etcd" and task.total == 240
            display.refresh()
        with pytest.raises(RuntimeError), progress.step(display, "building kube"):
            raise RuntimeError("boom")
        assert display._progress.tasks == []
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())  # colours and cursor moves
    assert "done building etcd" in shown and "FAILED building kube" in shown
    assert "a heartbeat" not in shown
