"""What a soak's curves say: each one's slope over the last part of the run, fitted by least squares.

A curve is a list of ``(seconds from the start, value)``. The first third of a run is warm-up
(caches fill, pools open, the JIT and the allocators settle), so a trend is fitted over the last
two thirds; its growth is how much the fitted line rises across that window, as a percentage of
where it starts (a steady process stays within the noise of a few percent).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

#: the part of a run, from its end, a trend is fitted over
TAIL = 2 / 3


@dataclass(frozen=True)
class Trend:
    #: how many samples the fit used
    samples: int
    #: the fitted line's rise per minute
    slope_per_min: float
    #: the fitted values at the window's start and at its end
    fitted_start: float
    fitted_end: float
    #: (fitted_end - fitted_start) / fitted_start, in percent; None when the start is 0
    growth_pct: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def tail(points: Sequence[tuple[float, float]], fraction: float = TAIL) -> list[tuple[float, float]]:
    """The points of the last ``fraction`` of the time the curve spans."""
    if not points:
        return []
    first, last = points[0][0], points[-1][0]
    cut = last - (last - first) * fraction
    return [p for p in points if p[0] >= cut]


def trend(points: Sequence[tuple[float, float]], fraction: float = TAIL) -> Trend | None:
    """The least-squares line through the last ``fraction`` of ``points``; None with fewer than two
    samples there, or all at one instant."""
    window = tail(points, fraction)
    if len(window) < 2:
        return None
    n = len(window)
    mean_t = sum(t for t, _ in window) / n
    mean_v = sum(v for _, v in window) / n
    spread = sum((t - mean_t) ** 2 for t, _ in window)
    if spread == 0:
        return None
    slope = sum((t - mean_t) * (v - mean_v) for t, v in window) / spread
    start_t, end_t = window[0][0], window[-1][0]
    fitted_start = mean_v + slope * (start_t - mean_t)
    fitted_end = mean_v + slope * (end_t - mean_t)
    growth = None if fitted_start == 0 else 100 * (fitted_end - fitted_start) / abs(fitted_start)
    return Trend(
        samples=n,
        slope_per_min=round(slope * 60, 4),
        fitted_start=round(fitted_start, 3),
        fitted_end=round(fitted_end, 3),
        growth_pct=None if growth is None else round(growth, 2),
    )


def summary(curves: Mapping[str, Sequence[tuple[float, float]]]) -> dict[str, dict[str, Any]]:
    """Per curve: its first, last and highest value and its trend (as a dict, or None)."""
    out: dict[str, dict[str, Any]] = {}
    for name, points in curves.items():
        if not points:
            continue
        fitted = trend(points)
        out[name] = {
            "first": points[0][1],
            "last": points[-1][1],
            "max": max(v for _, v in points),
            "trend": fitted.as_dict() if fitted else None,
        }
    return out
