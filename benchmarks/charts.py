"""A timeline's charts for ``--report``: throughput and latency over the run, as PNG files; and
any named curves over a run (a soak's memory, descriptors, connections and backlogs).

matplotlib is imported when a chart is drawn, not with this module: a benchmark run without
``--report`` never loads it. It draws with its Agg backend (no display needed), on figures of
its own rather than pyplot's global state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Sized
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.timeline import Timeline

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

SIZE = (10.0, 4.5)
DPI = 100
#: series this short get a dot per point (a lone point draws no line)
DOTS_UP_TO = 60


def draw(timeline: Timeline, folder: Path, label: str, title: str) -> list[Path]:
    """``<label>-throughput.png`` and ``<label>-latency.png`` in ``folder``; their paths."""
    throughput = folder / f"{label}-throughput.png"
    latency = folder / f"{label}-latency.png"
    _save(_throughput(timeline, f"{title}: throughput"), throughput)
    _save(_latency(timeline, f"{title}: latency"), latency)
    return [throughput, latency]


def draw_curves(
    curves: Mapping[str, Sequence[tuple[float, float]]], path: Path, title: str, ylabel: str
) -> Path:
    """``curves`` (name -> (seconds, value) points) on one chart at ``path``."""
    figure, axes = _figure(title, ylabel)
    for name, points in curves.items():
        axes.plot(
            [t for t, _ in points], [v for _, v in points], label=name, linewidth=1, marker=_marker(points)
        )
    _finish(axes, Timeline(), drawn=any(curves.values()))
    _save(figure, path)
    return path


def _figure(title: str, ylabel: str) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(title, fontsize=10)
    axes.set_xlabel("seconds from the start")
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    return figure, axes


def _throughput(timeline: Timeline, title: str) -> Figure:
    figure, axes = _figure(title, "per second")
    for name, points in timeline.rates.items():
        seconds, rates = [p.second for p in points], [p.per_s for p in points]
        axes.plot(seconds, rates, label=name, linewidth=1, marker=_marker(points))
    _finish(axes, timeline, drawn=any(timeline.rates.values()))
    return figure


def _latency(timeline: Timeline, title: str) -> Figure:
    figure, axes = _figure(title, "milliseconds")
    for name, points in timeline.latencies.items():
        seconds, dot = [p.second for p in points], _marker(points)
        (p50,) = axes.plot(seconds, [p.p50_ms for p in points], label=f"{name} p50", linewidth=1, marker=dot)
        color = p50.get_color()
        axes.plot(seconds, [p.p99_ms for p in points], "--", color=color, label=f"{name} p99", marker=dot)
    _finish(axes, timeline, drawn=any(timeline.latencies.values()))
    return figure


def _marker(points: Sized) -> str | None:
    return "." if len(points) <= DOTS_UP_TO else None


def _finish(axes: Axes, timeline: Timeline, *, drawn: bool) -> None:
    """Phase boundaries as dotted lines, a legend, or a note that the run recorded nothing."""
    _mark_phases(axes, timeline.phases.items())
    if drawn:
        axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        axes.set_ylim(bottom=0)
    else:
        axes.text(0.5, 0.5, "nothing recorded", transform=axes.transAxes, ha="center", va="center")


def _mark_phases(axes: Axes, phases: Iterable[tuple[str, float]]) -> None:
    for name, second in phases:
        axes.axvline(second, color="grey", linestyle=":", linewidth=1)
        axes.annotate(
            name,
            (second, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(3, -12),
            textcoords="offset points",
            fontsize=8,
            color="grey",
        )


def _save(figure: Figure, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure).print_png(str(path))
