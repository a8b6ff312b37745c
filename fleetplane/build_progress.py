"""How ``fleetplane local build`` (and the demo's build) shows a cold build: at a terminal, a live
display of each running step with its time and roughly what is left; elsewhere (CI, tests, a pipe)
the plain ``[fleetplane] ...`` lines, which are parsed and logged."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from localinfra.progress import Reporter, stderr_reporter


class _Left(ProgressColumn):
    """What the step's estimate leaves, from its elapsed time (steps do not count their work)."""

    def render(self, task: Task) -> Text:
        estimate = task.total
        elapsed = task.elapsed or 0.0
        if not estimate:
            return Text("")
        left = estimate - elapsed
        if left <= 0:
            return Text("longer than usual", style="yellow")
        return Text(f"about {left / 60:.0f} min left" if left >= 90 else f"about {left:.0f} s left")


class RichSteps:
    """A step display (:class:`localinfra.progress.StepDisplay`) drawn on stderr."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            _Left(),
            console=console,
            transient=True,
        )
        self._tasks: dict[str, TaskID] = {}
        self._lock = threading.Lock()

    def __call__(self, message: str) -> None:
        self._progress.console.print(message, markup=False, highlight=False)

    def started(self, name: str, estimate: float | None) -> None:
        with self._lock:
            self._tasks[name] = self._progress.add_task(name, total=estimate)

    def ended(self, name: str, seconds: float, ok: bool) -> None:
        with self._lock:
            task = self._tasks.pop(name)
        self._progress.remove_task(task)
        mark = "[green]done[/green]" if ok else "[red]FAILED[/red]"
        self._progress.console.print(f"{mark} {name} in {seconds:.0f}s", highlight=False)

    def refresh(self) -> None:
        """Move each bar to its step's elapsed time (the estimate is the bar's total)."""
        for task in self._progress.tasks:
            if task.total:
                self._progress.update(task.id, completed=min(task.elapsed or 0.0, task.total))

    @contextmanager
    def shown(self) -> Iterator[RichSteps]:
        stop = threading.Event()

        def tick() -> None:
            while not stop.wait(0.5):
                self.refresh()

        ticker = threading.Thread(target=tick, name="build-progress", daemon=True)
        with self._progress:
            ticker.start()
            try:
                yield self
            finally:
                stop.set()
                ticker.join()


@contextmanager
def reporter() -> Iterator[Reporter]:
    """The live display when stderr is a terminal, else the plain progress lines."""
    console = Console(stderr=True)
    if not sys.stderr.isatty() or not console.is_terminal:
        yield stderr_reporter
        return
    with RichSteps(console).shown() as display:
        yield display
