"""The faults the chaos suite strikes a rollout with, and the one way each is played.

A fault is injected once the rollout is a third through its calls, held until a condition on what
the rollout sees says it bit (calls accepted without the dead process, a call refused while the
database is away, the other cluster moving on while one agent is cut off), then recovered (the
process started again with its command line, the relays listening again). Any fault with that
shape fits. A fault that hands a role over (a broker's partition leaderships) also measures the
seconds from the kill to the takeover, in ``measured``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import Protocol

import pytest

from benchmarks.chaos.faults import PROGRESS_WHILE_DOWN, SESSION_TIMEOUT
from benchmarks.chaos.faults import Fault as BenchFault
from benchmarks.chaos.rollout import Rollout, rolling
from localinfra.kafka_cluster import Brokers
from localinfra.tcpproxy import SeverableRelay
from tests.chaos.environment import Chaos

#: the share of the rollout's calls accepted before the fault strikes
STRIKE_AT = 1 / 3


class Fault(BenchFault, Protocol):
    @property
    def measured(self) -> dict[str, float]:
        """Figures of the fault itself (seconds to a takeover), once it was recovered."""


@dataclasses.dataclass
class KillBroker:
    """kill -9 of the Kafka broker that leads the first cluster's spec topic, held until another
    broker leads it (the takeover, measured) and the rollout had ``progress`` more calls accepted;
    then started again on its data and waited for until every partition is fully replicated."""

    brokers: Brokers
    chaos: Chaos
    progress: int = PROGRESS_WHILE_DOWN
    measured: dict[str, float] = dataclasses.field(default_factory=dict, init=False)
    _victim: int = dataclasses.field(default=-1, init=False)
    _killed_at: float = dataclasses.field(default=0.0, init=False)

    @property
    def name(self) -> str:
        return "kill -9 of a Kafka broker"

    @property
    def _topic(self) -> str:
        first = self.chaos.rig.clusters[0].name
        return self.chaos.rig.topics.spec_topic(self.chaos.rig.slots[first])

    async def inject(self) -> None:
        self._victim = await asyncio.to_thread(self.brokers.leader_of, self._topic)
        await asyncio.to_thread(self.brokers.kill, self._victim)
        self._killed_at = time.monotonic()
        self.chaos.note(f"{self.brokers.names[self._victim]}, leader of {self._topic}, killed -9")

    async def hold(self, rollout: Rollout) -> None:
        # leader_of says -2 while the partition has no leader
        deadline = time.monotonic() + 60
        while (leader := await asyncio.to_thread(self.brokers.leader_of, self._topic)) in (self._victim, -2):
            if time.monotonic() > deadline:
                pytest.fail(f"no other broker leads {self._topic} 60s after the kill", pytrace=False)
            await asyncio.sleep(0.2)
        self.measured["takeover"] = time.monotonic() - self._killed_at
        self.chaos.note(f"{self.brokers.names[leader]} leads {self._topic}")
        await rollout.until_acknowledged(min(rollout.total, rollout.acknowledged + self.progress))

    async def recover(self) -> None:
        await asyncio.to_thread(self.brokers.restart, self._victim)
        await asyncio.to_thread(self.brokers.wait_in_sync)


@dataclasses.dataclass
class CutNetwork:
    """The relays between one agent and the Kafka brokers stop: their connections drop and new ones
    are refused. Held past the consumer session timeout while the rollout goes on; then the relays
    listen again."""

    relays: list[SeverableRelay]
    chaos: Chaos
    hold_for: float = SESSION_TIMEOUT * 1.5
    measured: dict[str, float] = dataclasses.field(default_factory=dict, init=False)
    _cut_at: float = dataclasses.field(default=0.0, init=False)

    @property
    def name(self) -> str:
        return f"network cut between {self.chaos.agents[0].short} and Kafka"

    @property
    def _connections(self) -> int:
        return sum(relay.connections for relay in self.relays)

    async def inject(self) -> None:
        # Else the cut would cut nothing: the agent must reach the brokers through the relays alone.
        carried = sum(relay.open_connections for relay in self.relays)
        assert carried > 0, f"{self.chaos.agents[0].short} holds no connection through the relays to cut"
        for relay in self.relays:
            await relay.cut()
        self._cut_at = time.monotonic()
        self.chaos.note(f"relays cut: {carried} connections dropped")

    async def hold(self, rollout: Rollout) -> None:
        # The rollout keeps being accepted meanwhile; the cut lasts past the session timeout.
        await rollout.until_acknowledged(min(rollout.total, rollout.acknowledged + PROGRESS_WHILE_DOWN))
        await asyncio.sleep(max(0.0, self.hold_for - (time.monotonic() - self._cut_at)))

    async def recover(self) -> None:
        before = self._connections
        for relay in self.relays:
            await relay.restore()
        await until(
            f"{self.chaos.agents[0].short} to reach Kafka through the relays again",
            lambda: self._connections > before,
            timeout=60,
        )


async def until(what: str, condition: Callable[[], bool], *, timeout: float, period: float = 0.2) -> None:
    """Wait until ``condition`` holds; fail saying what was expected."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"expected {what} within {timeout:.0f}s", pytrace=False)
        await asyncio.sleep(period)


async def roll_out_through(chaos: Chaos, fault: Fault, works: int) -> dict[str, float]:
    """A rollout of ``works`` works with ``fault`` struck in its middle; returns its figures once its
    outcome is exact (seconds to the fault's recovery and from it to the exact outcome)."""
    down = chaos.not_running()
    assert not down, f"the pipeline is not whole before {fault.name}: {down} not running"
    rollout = Rollout(
        [s.address for s in chaos.servers],
        chaos.rig.credentials(),
        [c.name for c in chaos.rig.clusters],
        chaos.rig.namespace,
        works,
    )
    started = time.monotonic()
    async with rolling(rollout):
        await rollout.until_acknowledged(int(rollout.total * STRIKE_AT))
        struck_at = rollout.acknowledged
        chaos.note(f"{fault.name}: {struck_at}/{rollout.total} calls accepted")
        await fault.inject()
        await fault.hold(rollout)
        chaos.note(
            f"{fault.name}: recovering, {rollout.acknowledged} calls accepted, "
            f"retries {dict(rollout.retries)}"
        )
        await fault.recover()
        recovered = time.monotonic()
        chaos.note(f"{fault.name}: recovered")
    assert struck_at < rollout.total, f"the rollout was over before {fault.name}"
    # A source is told to send a call again (UNAVAILABLE), not handed an unexplained UNKNOWN.
    assert "UNKNOWN" not in rollout.retries, (
        f"calls failed UNKNOWN during {fault.name}: {dict(rollout.retries)}"
    )
    converged = await chaos.wait_exact(rollout)
    chaos.note(f"{fault.name}: exact {converged:.1f}s after the rollout's last call")
    return {
        "calls": rollout.total,
        "retries": sum(rollout.retries.values()),
        **fault.measured,
        "to recovery": recovered - started,
        "to exact": time.monotonic() - recovered,
    }
