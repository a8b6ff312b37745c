"""Bounds on status streams: how many are open per replica and per caller, and one stream's backlog.

Cases: the server-wide limit refuses one more stream with a message saying what to do, and takes
one again once a stream closes; a caller's limit refuses only that caller's next stream; calls
without an identity count against the total only; giving a slot back twice frees it once; a
backlog takes any one answer while empty, overflows when more would pass its limit, then holds
nothing and takes nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from maestro.api import errors
from maestro.server import streams
from maestro.wire import status_codes


class Context:
    def __init__(self, identity: str | None = None) -> None:
        self.identity = identity

    def peer_identities(self) -> list[bytes] | None:
        return [self.identity.encode()] if self.identity else None


def limits(total: int, per_caller: int) -> streams.StreamLimits:
    return streams.StreamLimits(total, per_caller)


def test_the_server_wide_limit_refuses_one_more_and_takes_one_again_after_a_close() -> None:
    lim = limits(2, 10)
    first, _ = lim.acquire(Context(), "WatchStatus"), lim.acquire(Context("a"), "Subscribe")
    with pytest.raises(errors.Exhausted) as caught:
        lim.acquire(Context("b"), "WatchStatus")
    assert status_codes.code_for(caught.value).name == "RESOURCE_EXHAUSTED"
    assert "2 status streams open" in str(caught.value) and "--max-streams" in str(caught.value)
    first()
    assert lim.open_streams == 1
    lim.acquire(Context("b"), "WatchStatus")
    assert lim.open_streams == 2


CALLERS: list[tuple[str, list[str | None], str | None, bool]] = [
    ("a caller at its limit", ["a", "a"], "a", False),
    ("another caller", ["a", "a"], "b", True),
    ("no identity is not limited per caller", [None, None], None, True),
]


@pytest.mark.parametrize(
    ("opened", "next_caller", "accepted"), [c[1:] for c in CALLERS], ids=[c[0] for c in CALLERS]
)
def test_the_per_caller_limit(opened: list[str | None], next_caller: str | None, accepted: bool) -> None:
    lim = limits(100, 2)
    for who in opened:
        lim.acquire(Context(who), "Subscribe")
    if accepted:
        lim.acquire(Context(next_caller), "Subscribe")
        return
    with pytest.raises(errors.Exhausted) as caught:
        lim.acquire(Context(next_caller), "Subscribe")
    assert "per caller" in str(caught.value) and "--max-streams-per-caller" in str(caught.value)


def test_a_slot_given_back_twice_is_freed_once_and_callers_are_forgotten() -> None:
    lim = limits(5, 5)
    release = lim.acquire(Context("a"), "Subscribe")
    lim.acquire(Context("b"), "Subscribe")
    release()
    release()
    assert lim.open_streams == 1 and lim.open_for("a") == 0 and lim.open_for("b") == 1


def test_a_caller_hook_names_callers_otherwise() -> None:
    def by_header(context: Any) -> str | None:
        return "team-x"

    lim = streams.StreamLimits(10, 1, caller=by_header)
    lim.acquire(Context(), "Subscribe")
    with pytest.raises(errors.Exhausted):
        lim.acquire(Context(), "Subscribe")


def test_a_backlog_takes_one_answer_whole_then_overflows_and_holds_nothing() -> None:
    backlog: streams.Backlog[int] = streams.Backlog(5)
    assert backlog.offer(list(range(50)))  # empty: any one answer, however large
    assert len(backlog) == 50
    assert not backlog.offer([1])  # past the limit with earlier items unsent
    assert backlog.overflowed and len(backlog) == 0 and backlog.pop() is None
    assert not backlog.offer([1])


def test_a_backlog_within_its_limit() -> None:
    backlog: streams.Backlog[int] = streams.Backlog(5)
    assert backlog.offer([1, 2]) and backlog.offer([3, 4, 5])
    assert [backlog.pop() for _ in range(5)] == [1, 2, 3, 4, 5]
    assert backlog.pop() is None and not backlog.overflowed
    assert backlog.offer(list(range(9)))
