"""WriteBatcher: coalesce per key, skip no-ops, rate-limit with a token bucket, on a fake clock.

Cases: coalescing keeps the queue position and the latest patch; identical patches (written,
primed, in flight) are skipped; a patch returning to the written state cancels the pending one;
a write by someone else sets the baseline, and one that races ours makes its outcome unsure;
token bucket bursts and refills; delay; failed writes are retried unless superseded; forget;
bad settings; property: never more writes than the bucket allows, and every key ends at its
latest patch.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controllers.status import batching


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make(rate: float = 10.0, burst: int = 100) -> tuple[batching.WriteBatcher, FakeClock]:
    clock = FakeClock()
    return batching.WriteBatcher(rate=rate, burst=burst, clock=clock), clock


def patch(value: Any) -> dict[str, Any]:
    return {"status": {"sync": {"status": value}}}


def keys(writes: list[batching.PendingWrite]) -> list[Any]:
    return [w.key for w in writes]


def test_coalesces_and_keeps_the_queue_position() -> None:
    b, _ = make()
    b.offer("a", patch(1))
    b.offer("b", patch(1))
    b.offer("a", patch(2))
    writes = b.drain()
    assert keys(writes) == ["a", "b"]
    assert writes[0].patch == patch(2)


@pytest.mark.parametrize(
    "setup",
    ["written", "primed", "in flight"],
)
def test_identical_patches_are_skipped(setup: str) -> None:
    b, _ = make()
    if setup == "primed":
        b.prime("a", patch(1))
    else:
        b.offer("a", patch(1))
        (write,) = b.drain()
        if setup == "written":
            b.written(write)
    assert b.offer("a", {"status": {"sync": {"status": 1}}}) is False
    assert len(b) == 0


def test_returning_to_the_written_state_cancels_the_pending_patch() -> None:
    b, _ = make()
    b.prime("a", patch("Synced"))
    b.offer("a", patch("OutOfSync"))
    assert b.offer("a", patch("Synced")) is False
    assert b.drain() == []


def test_a_change_while_in_flight_is_queued() -> None:
    b, _ = make()
    b.prime("a", patch(0))
    b.offer("a", patch(1))
    (in_flight,) = b.drain()
    assert b.offer("a", patch(0)) is True  # back to the old value must still be written after 1 lands
    b.written(in_flight)
    assert [w.patch for w in b.drain()] == [patch(0)]


def test_a_key_in_flight_is_not_drained_again_until_it_lands() -> None:
    b, _ = make()
    b.offer("a", patch(1))
    b.offer("b", patch(1))
    (first, _) = b.drain(limit=2)
    b.offer("a", patch(2))  # newer than what is in flight
    b.offer("c", patch(1))
    assert keys(b.drain()) == ["c"]  # "a" waits: two writes of one object could land out of order
    b.failed(first)  # the older write failed; the newer patch stays queued, not the failed one
    assert [(w.key, w.patch) for w in b.drain()] == [("a", patch(2))]


def test_written_by_someone_else_sets_the_baseline() -> None:
    b, _ = make()
    b.offer("a", patch(1))
    (write,) = b.drain()
    assert b.written(write) is False
    b.overwritten("a", patch(2))
    assert b.offer("a", patch(2)) is False  # the object holds it already
    b.overwritten("a", None)
    assert b.offer("a", patch(2)) is True  # unknown again: written


def test_written_by_someone_else_while_ours_is_out_makes_the_outcome_unsure() -> None:
    b, _ = make()
    b.offer("a", patch(1))
    (write,) = b.drain()
    b.overwritten("a", patch(2))  # theirs and ours race: which landed last is unknown
    assert b.offer("a", patch(2)) is False
    assert b.written(write) is True, "the caller must offer the latest again"
    assert b.offer("a", patch(2)) is True
    (again,) = b.drain()
    assert b.written(again) is False


def test_token_bucket_bursts_then_spaces_writes() -> None:
    b, clock = make(rate=2.0, burst=3)
    for i in range(6):
        b.offer(i, patch(i))
    assert keys(b.drain()) == [0, 1, 2]
    assert b.drain() == []
    assert b.delay() == pytest.approx(0.5)
    clock.now = 0.25
    assert b.drain() == [] and b.delay() == pytest.approx(0.25)
    clock.now = 1.0
    assert keys(b.drain()) == [3, 4]
    clock.now = 100.0
    assert keys(b.drain(limit=5)) == [5]
    assert b.delay() == 0.0


def test_drain_limit() -> None:
    b, _ = make()
    for i in range(4):
        b.offer(i, patch(i))
    assert keys(b.drain(limit=2)) == [0, 1]
    assert keys(b.drain()) == [2, 3]


def test_failed_writes_are_retried_unless_superseded() -> None:
    b, _ = make()
    b.offer("a", patch(1))
    b.offer("b", patch(1))
    first_a, first_b = b.drain()
    b.offer("b", patch(2))
    b.failed(first_a)
    b.failed(first_b)
    assert [(w.key, w.patch) for w in b.drain()] == [("b", patch(2)), ("a", patch(1))]


def test_forget() -> None:
    b, _ = make()
    b.prime("a", patch(1))
    b.offer("b", patch(1))
    b.forget("a")
    b.forget("b")
    assert len(b) == 0
    assert b.offer("a", patch(1)) is True


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (1, 0)], ids=["no rate", "no burst"])
def test_bad_settings(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="rate > 0"):
        batching.WriteBatcher(rate=rate, burst=burst)


operations = st.lists(
    st.one_of(
        st.tuples(st.just("offer"), st.integers(0, 4), st.integers(0, 3)),
        st.tuples(st.just("tick"), st.floats(0, 2), st.just(0)),
        st.tuples(st.just("drain"), st.integers(0, 0), st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(operations, st.floats(0.5, 5), st.integers(1, 4))
def test_rate_is_respected_and_every_key_ends_at_its_latest_patch(
    ops: list[tuple[str, Any, int]], rate: float, burst: int
) -> None:
    b, clock = make(rate=rate, burst=burst)
    latest: dict[int, dict[str, Any]] = {}
    written = 0
    for op, arg, value in ops:
        if op == "offer":
            b.offer(arg, patch(value))
            latest[arg] = patch(value)
        elif op == "tick":
            clock.now += arg
        else:
            for write in b.drain():
                b.written(write)
                written += 1
        assert written <= burst + rate * clock.now + 1e-9
    while len(b):
        clock.now += 1000
        for write in b.drain():
            b.written(write)
    for key, last in latest.items():
        assert b.offer(key, last) is False  # what was written last is what was offered last


def test_a_token_bucket_lets_a_cost_above_its_burst_go_once_and_be_paid_back() -> None:
    clock = [0.0]
    bucket = batching.TokenBucket(rate=10.0, burst=10.0, clock=lambda: clock[0])
    bucket.spend(25.0)  # one large status: allowed while tokens remain, leaving a debt
    assert bucket.tokens == -15.0 and bucket.delay(1.0) == 1.6
    clock[0] += 1.5
    assert bucket.tokens == 0.0
    clock[0] += 100.0
    assert bucket.tokens == 10.0, "no more than the burst is saved up"
