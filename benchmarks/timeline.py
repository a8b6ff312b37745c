"""What a run counted over time, for ``--report``: rates and latency percentiles by second.

Times are seconds from the run's start (its first measured phase). A rate is how many things of a
kind finished in each second (``per_second``), or how fast a running count moved between two of
the run's samples (``rises``); a latency series holds, for each second, the percentiles of the
latencies of what finished in it (``latency_per_second``).
"""

from __future__ import annotations

import itertools
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class RatePoint:
    second: float
    per_s: float


@dataclass(frozen=True)
class LatencyPoint:
    second: float
    #: how many finished in this second
    count: int
    p50_ms: float
    p99_ms: float


@dataclass
class Timeline:
    #: each phase and the second it began, in order
    phases: dict[str, float] = field(default_factory=dict)
    rates: dict[str, list[RatePoint]] = field(default_factory=dict)
    latencies: dict[str, list[LatencyPoint]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile_ms(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (nearest rank) of ``values`` in seconds, in milliseconds; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def per_second(instants: Iterable[float], start: float) -> list[RatePoint]:
    """How many of ``instants`` fell in each whole second from ``start``, from the first such second
    to the last (seconds with none count 0)."""
    counts = Counter(math.floor(at - start) for at in instants)
    if not counts:
        return []
    return [RatePoint(float(s), float(counts.get(s, 0))) for s in range(min(counts), max(counts) + 1)]


def rises(samples: Sequence[tuple[float, float]], start: float) -> list[RatePoint]:
    """How fast a running count rose per second between consecutive ``(instant, count)`` samples,
    placed at the later one."""
    return [
        RatePoint(round(later - start, 3), round((count - before) / (later - earlier), 2))
        for (earlier, before), (later, count) in itertools.pairwise(samples)
        if later > earlier
    ]


def latency_per_second(finished: Iterable[tuple[float, float]], start: float) -> list[LatencyPoint]:
    """``(instant finished, latency in seconds)`` grouped by the second from ``start`` it finished
    in: how many, and their p50 and p99 in milliseconds."""
    by_second: dict[int, list[float]] = defaultdict(list)
    for at, latency in finished:
        by_second[math.floor(at - start)].append(latency)
    return [
        LatencyPoint(
            float(second),
            len(latencies),
            round(percentile_ms(latencies, 0.5), 1),
            round(percentile_ms(latencies, 0.99), 1),
        )
        for second, latencies in sorted(by_second.items())
    ]
