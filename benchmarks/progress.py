"""What a benchmark shows while it runs.

Two kinds of news: a milestone (``progress("[bench] creating ...")``), always a line, and a count
of the step under way (``progress.advance(done, line)``). ``Progress`` writes both as lines, the
counts at most every ``every`` seconds: logs and CI output stay short, and tests read the lines.
``BarProgress``, for a terminal, prints the milestones above a bar of the step under way (done of
total, rate, time left) that the counts move instead of adding lines.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress


class Progress:
    """Milestones and counts as lines (what a log or a pipe gets)."""

    def __init__(self, write: Callable[[str], None] = print, *, every: float = 5.0) -> None:
        self._write = write
        self._every = every
        self._printed = -math.inf

    def __call__(self, line: str) -> None:
        """A milestone: always shown."""
        self._write(line)

    def step(self, description: str, total: int) -> None:
        """A step measured by a count up to ``total`` begins (a milestone line says so already);
        its first count line comes ``every`` seconds on."""
        self._printed = time.monotonic()

    def advance(self, done: int, line: str | None = None) -> None:
        """The step's count; ``line`` is what a log shows of it, at most every ``every`` seconds."""
        now = time.monotonic()
        if line is not None and now - self._printed >= self._every:
            self._printed = now
            self._write(line)

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        """Nothing to tidy for lines."""


class BarProgress(Progress):
    """On a terminal: milestones printed above a live bar of the step under way."""

    def __init__(self, console: Console) -> None:
        super().__init__(_lines_on(console))
        self._bar = RichProgress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("elapsed,"),
            TimeRemainingColumn(),
            TextColumn("left"),
            TextColumn("{task.fields[detail]}", markup=False),
            console=console,
            transient=True,
        )
        self._task: TaskID | None = None

    def step(self, description: str, total: int) -> None:
        super().step(description, total)
        if self._task is not None:
            self._bar.remove_task(self._task)
        self._task = self._bar.add_task(description, total=total, detail="")

    def advance(self, done: int, line: str | None = None) -> None:
        if self._task is not None:
            detail = line.removeprefix("[bench]").strip() if line else ""
            self._bar.update(self._task, completed=done, detail=detail)

    def __enter__(self) -> Progress:
        self._bar.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._bar.stop()


def for_console(console: Console) -> Progress:
    """A bar where ``console`` is a terminal, lines elsewhere (a log, a pipe, CI)."""
    if console.is_terminal:
        return BarProgress(console)
    return Progress(_lines_on(console))


def _lines_on(console: Console) -> Callable[[str], None]:
    return lambda line: console.print(line, highlight=False, markup=False, soft_wrap=True)
