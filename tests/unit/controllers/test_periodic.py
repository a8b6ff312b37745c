"""The safety nets' pause: the period while a read is quick, longer once a read would otherwise take
more than its share of the time; a failed read is tried again, and a cancel stops the loop."""

from __future__ import annotations

import asyncio

import pytest

from controllers import periodic


def test_the_pause_is_the_period_until_a_read_would_take_more_than_its_share() -> None:
    assert periodic.next_pause(60.0, 0.5) == 60.0
    assert periodic.next_pause(60.0, 3.0) == 60.0  # 3 s of 63: under 5%
    pause = periodic.next_pause(60.0, 12.0)  # a list of 150,000 works
    assert pause == pytest.approx(228.0)
    assert 12.0 / (12.0 + pause) == pytest.approx(periodic.MAX_SHARE)


async def test_reads_go_on_after_a_failure_and_pause_after_their_duration() -> None:
    calls: list[float] = []
    sleeps: list[float] = []
    now = [0.0]

    async def read() -> None:
        calls.append(now[0])
        now[0] += 10.0  # each read takes 10 s of the clock
        if len(calls) == 1:
            raise RuntimeError("server away")
        if len(calls) == 3:
            raise asyncio.CancelledError

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    with pytest.raises(asyncio.CancelledError):
        await periodic.run_periodically(read, 60.0, what="test read", clock=lambda: now[0], sleep=sleep)
    assert len(calls) == 3  # the failed read did not stop the loop
    assert sleeps == [60.0, pytest.approx(190.0), pytest.approx(190.0)]
