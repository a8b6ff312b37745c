"""What a benchmark shows while it runs.

Cases: milestones are always written; a step's counts are written at most every few seconds, the
first one a full interval after the step began, and a count without a line writes nothing; off a
terminal a console gets plain lines, on one a bar that takes the counts while milestones still print.
"""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from benchmarks import progress


def test_lines_are_milestones_and_counts_at_most_every_few_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    lines: list[str] = []
    shown = progress.Progress(lines.append, every=5.0)

    shown("[bench] creating 10 works ...")
    shown.step("works", 10)
    for second, done in ((1, 1), (5, 3), (6, 4), (10, 8), (11, 9)):
        now[0] = 100.0 + second
        shown.advance(done, f"[bench]   {done}/10")
    shown.advance(10)  # a count alone is for a bar

    assert lines == ["[bench] creating 10 works ...", "[bench]   3/10", "[bench]   8/10"]


def test_a_terminal_gets_a_bar_and_a_pipe_plain_lines() -> None:
    piped = Console(file=io.StringIO(), force_terminal=False)
    assert type(progress.for_console(piped)) is progress.Progress

    out = io.StringIO()
    terminal = Console(file=out, force_terminal=True, width=120)
    with progress.for_console(terminal) as shown:
        assert isinstance(shown, progress.BarProgress)
        shown("[bench] creating 10 works ...")
        shown.step("works", 10)
        shown.advance(4, "[bench]   4/10")
    assert "[bench] creating 10 works ..." in out.getvalue()
