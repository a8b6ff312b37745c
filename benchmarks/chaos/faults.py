"""The faults ``bench chaos`` strikes a rollout with: the chaos suite's, played the same way.

Each is injected once the rollout is a third through its calls, held until a condition on what
the rollout sees says it bit (calls accepted without the dead process, a call refused while the
database is away, the rollout going on while one agent is cut off from every broker), then
recovered (the process started again with its command line, the relays listening again).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import Protocol

from benchmarks.chaos.pipeline import POSTGRES, ChaosPipeline
from benchmarks.chaos.rollout import Rollout
from localinfra import postgres, process
from localinfra.environment import Environment

#: calls accepted while a killed process stays down
PROGRESS_WHILE_DOWN = 40
# The consumer session timeout of Maestro's Kafka readers (maestro.transport.consumer): an agent
# cut off for longer has its session expire on the broker's side.
SESSION_TIMEOUT = 10.0


class Fault(Protocol):
    @property
    def name(self) -> str: ...

    async def inject(self) -> None: ...

    async def hold(self, rollout: Rollout) -> None:
        """Return once the fault has bitten (a condition on the rollout or the pipeline)."""

    async def recover(self) -> None: ...


async def _progress_without(rollout: Rollout) -> None:
    await rollout.until_acknowledged(min(rollout.total, rollout.acknowledged + PROGRESS_WHILE_DOWN))


class Killable(Protocol):
    """A process killed -9 and started again with its command line (a pipeline `Member`, a
    chaos suite's ``Managed`` process)."""

    @property
    def short(self) -> str: ...

    def kill_hard(self) -> None: ...

    def start(self) -> None: ...


@dataclasses.dataclass
class KillProcess:
    """kill -9 of a process (a Maestro replica, an agent), started again once the rollout has had
    ``progress`` more calls accepted without it."""

    victim: Killable
    progress: int = PROGRESS_WHILE_DOWN
    #: figures of the fault itself: none (the suite's faults that hand a role over have some)
    measured: dict[str, float] = dataclasses.field(default_factory=dict, init=False)

    @property
    def name(self) -> str:
        return f"kill -9 of {self.victim.short}"

    async def inject(self) -> None:
        await asyncio.to_thread(self.victim.kill_hard)

    async def hold(self, rollout: Rollout) -> None:
        await rollout.until_acknowledged(min(rollout.total, rollout.acknowledged + self.progress))

    async def recover(self) -> None:
        await asyncio.to_thread(self.victim.start)


@dataclasses.dataclass
class KillPostgres:
    """kill -9 of the PostgreSQL server ``server`` of ``env`` (its postmaster; the backends notice
    and exit), held until a call of the rollout failed for it, then started again on its data:
    crash recovery."""

    env: Environment
    server: str
    measured: dict[str, float] = dataclasses.field(default_factory=dict, init=False)

    @property
    def name(self) -> str:
        return f"kill -9 of {self.server}"

    async def inject(self) -> None:
        await asyncio.to_thread(process.kill_hard, self.env.processes[self.server])

    async def hold(self, rollout: Rollout) -> None:
        before = sum(rollout.retries.values())
        await rollout.until(
            "a call refused while the database is away", lambda: sum(rollout.retries.values()) > before
        )

    async def recover(self) -> None:
        await asyncio.to_thread(postgres.restart, self.env, self.server)


@dataclasses.dataclass
class KillBroker:
    """kill -9 of the broker leading the first cluster's spec partition; started again once the
    rollout has had more calls accepted without it, and recovered once every partition is back
    in sync."""

    pipeline: ChaosPipeline
    _victim: int = dataclasses.field(default=0, init=False)

    @property
    def name(self) -> str:
        return "kill -9 of a Kafka broker"

    async def inject(self) -> None:
        brokers = self.pipeline.brokers
        spec = self.pipeline.clusters[0].spec_placement
        self._victim = await asyncio.to_thread(brokers.leader_of, spec.topic, spec.partition)
        self.pipeline.report(f"[bench] killing {brokers.names[self._victim]}, leader of {spec.topic}")
        await asyncio.to_thread(brokers.kill, self._victim)

    async def hold(self, rollout: Rollout) -> None:
        await _progress_without(rollout)

    async def recover(self) -> None:
        await asyncio.to_thread(self.pipeline.brokers.restart, self._victim)
        await asyncio.to_thread(self.pipeline.brokers.wait_in_sync)


@dataclasses.dataclass
class CutNetwork:
    """The first agent's relays to the brokers stop: its connections drop and new ones are refused.
    Held past the consumer session timeout while the rollout goes on; then they listen again."""

    pipeline: ChaosPipeline
    hold_for: float = SESSION_TIMEOUT * 1.5
    _cut_at: float = dataclasses.field(default=0.0, init=False)

    @property
    def name(self) -> str:
        return f"network cut between {self.pipeline.agents[0].short} and Kafka"

    async def inject(self) -> None:
        carried = sum(r.open_connections for r in self.pipeline.relays)
        if not carried:  # else the cut would cut nothing
            raise RuntimeError(f"{self.pipeline.agents[0].short} holds no connection through its relays")
        for relay in self.pipeline.relays:
            await relay.cut()
        self._cut_at = time.monotonic()

    async def hold(self, rollout: Rollout) -> None:
        await _progress_without(rollout)
        await asyncio.sleep(max(0.0, self.hold_for - (time.monotonic() - self._cut_at)))

    async def recover(self) -> None:
        before = sum(r.connections for r in self.pipeline.relays)
        for relay in self.pipeline.relays:
            await relay.restore()
        deadline = time.monotonic() + 60
        while sum(r.connections for r in self.pipeline.relays) <= before:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.pipeline.agents[0].short} did not reach Kafka again within 60s")
            await asyncio.sleep(0.2)


#: every fault, by the name ``--faults`` takes, in the order they are struck
FAULTS: dict[str, Callable[[ChaosPipeline], Fault]] = {
    "maestro-replica": lambda p: KillProcess(p.servers[0]),
    "agent": lambda p: KillProcess(p.agents[1 % len(p.agents)]),
    "postgres": lambda p: KillPostgres(p.env, POSTGRES),
    "kafka-broker": KillBroker,
    "agent-kafka-cut": CutNetwork,
}
