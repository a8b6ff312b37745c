"""What a run counted over time: rates by second, rates between samples, latencies by second.

Cases: instants are counted in the whole second from the start they fall in, seconds with none in
between count 0; a running count's rise is divided by the time between its samples; latencies are
grouped by the second they finished in, with nearest-rank percentiles in milliseconds; nothing
counted gives empty series.
"""

from __future__ import annotations

from benchmarks.timeline import LatencyPoint, RatePoint, latency_per_second, per_second, percentile_ms, rises


def test_per_second_counts_each_whole_second_and_the_empty_ones_between() -> None:
    assert per_second([100.2, 100.9, 101.0, 103.5], start=100.0) == [
        RatePoint(0.0, 2.0),
        RatePoint(1.0, 1.0),
        RatePoint(2.0, 0.0),
        RatePoint(3.0, 1.0),
    ]
    assert per_second([], start=0.0) == []


def test_rises_divide_a_running_count_by_the_time_between_samples() -> None:
    samples = [(10.0, 0.0), (11.0, 4.0), (13.0, 10.0), (13.0, 12.0), (14.0, 9.0)]
    assert rises(samples, start=10.0) == [RatePoint(1.0, 4.0), RatePoint(3.0, 3.0), RatePoint(4.0, -3.0)]


def test_latencies_are_grouped_by_the_second_they_finished_in() -> None:
    finished = [(5.1, 0.010), (5.5, 0.030), (5.9, 0.020), (7.0, 0.5)]
    assert latency_per_second(finished, start=5.0) == [
        LatencyPoint(0.0, 3, 20.0, 30.0),
        LatencyPoint(2.0, 1, 500.0, 500.0),
    ]
    assert percentile_ms([], 0.99) == 0.0
