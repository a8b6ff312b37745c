"""What an agent's /readyz says, step by step (``maestro.agent.readiness``).

Cases: while it waits for Maestro it says so, with Maestro's last answer; while it starts, the step;
started, it is ready while its reader polls; a failed poll is the problem until a poll succeeds; a
reader that has not polled for a minute is stuck, unless a batch is being applied.
"""

from __future__ import annotations

from maestro.agent.readiness import ReaderState


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_agent_says_where_it_stands() -> None:
    clock = Clock()
    state = ReaderState("maestro:8090", stale_after=60, clock=clock)
    assert await state.problem() == "waiting for its placement from Maestro at maestro:8090"
    state.placement_refused("UNAVAILABLE: failed to connect")
    assert await state.problem() == (
        "waiting for its placement from Maestro at maestro:8090: UNAVAILABLE: failed to connect"
    )
    state.starting("assigning its spec partition fp.spec.3")
    assert await state.problem() == "assigning its spec partition fp.spec.3"

    state.started()
    assert await state.problem() is None
    state.polled(RuntimeError("broker away"))
    assert await state.problem() == "reading spec events failed: broker away"
    state.polled()
    assert await state.problem() is None

    clock.now += 61
    assert await state.problem() == "the spec reader has not polled Kafka for 61s"
    state.applying(True)
    clock.now += 300
    assert await state.problem() is None, "applying a large batch is work, not a stuck reader"
    state.applying(False)
    assert await state.problem() is None
