"""Many simulated agents in one process: the real ``Agent`` code over in-memory appliers.

They share one Kafka reader, *assigned* every simulated cluster's partition (no group
rebalancing), and one producer; each message is dispatched to the agent owning its partition, so
each agent still reads only its own cluster's events and counts the bytes it was handed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable

from maestro.agent.memory import MemoryApplier
from maestro.agent.runner import Agent
from maestro.api import consumers
from maestro.transport import clients, layout


class SimulatedFleet:
    def __init__(
        self,
        kafka: str,
        names: layout.Layout,
        *,
        argocd_sync_delay: float = 0.0,
        on_applied: Callable[[str, float], None] | None = None,
    ) -> None:
        self._names = names
        self._publisher = clients.Publisher(kafka, client_id="simulated-agents")
        self._reader = clients.Reader(kafka, names.agent_group("simulated"), client_id="simulated-agents")
        self._sync_delay = argocd_sync_delay
        self._on_applied = on_applied
        self.agents: dict[tuple[str, int], Agent] = {}
        self._task: asyncio.Task[None] | None = None

    async def add(self, placements: list[consumers.Consumer]) -> None:
        for consumer in placements:
            applier = MemoryApplier(consumer.name, argocd_sync_delay=self._sync_delay)
            if self._on_applied is not None:
                applier = _timed(applier, self._on_applied)
            agent = Agent(applier, self._publisher.publish, status_topic=self._names.status_topic)
            self.agents[(consumer.spec_placement.topic, consumer.spec_placement.partition)] = agent
        await asyncio.to_thread(self._reader.assign, sorted(self.agents))
        await asyncio.gather(*(a.start() for a in self.agents.values()))

    async def run(self) -> None:
        while True:
            messages = await self._reader.poll_batch(5000, 0.1)
            if not messages:
                continue
            by_partition: dict[tuple[str, int], list[clients.Incoming]] = defaultdict(list)
            for m in messages:
                by_partition[(m.topic, m.partition)].append(m)
            await asyncio.gather(*(self.agents[key].handle(batch) for key, batch in by_partition.items()))
            await self._reader.commit(messages)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="simulated-agents")

    async def refresh(self) -> None:
        await asyncio.gather(*(a.refresh() for a in self.agents.values()))

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._reader.close()


def _timed(applier: MemoryApplier, on_applied: Callable[[str, float], None]) -> MemoryApplier:
    """Report the moment each bundle is applied (for create -> applied latency)."""
    original = applier.apply

    async def apply(resource_id: str, version: int, bundle: dict) -> object:  # type: ignore[type-arg]
        result = await original(resource_id, version, bundle)
        on_applied(resource_id, asyncio.get_running_loop().time())
        return result

    applier.apply = apply  # type: ignore[method-assign,assignment]
    return applier
