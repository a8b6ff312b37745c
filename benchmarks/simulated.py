"""Many simulated agents in one process: the real ``Agent`` code over in-memory appliers.

They share a few Kafka readers, each *assigned* up to ``PARTITIONS_PER_READER`` simulated clusters'
spec topics (no group rebalancing), and one producer; each message is dispatched to the agent
owning its topic, so each agent still reads only its own cluster's events and counts the bytes
it was handed, and reports on its own cluster's status topic.

Sharing a process, they share one identity too (``FLEET``): the harness grants it prefixed ACLs
on every spec and status topic of the benchmark's prefix (``acls.fleet_acls``), where a real
cluster's principal gets literal ACLs on its own two topics.

Why several readers: a fetch request names every partition of its reader (librdkafka has no
incremental fetch sessions), and every event produced to one of them makes the broker re-check a
waiting fetch over all of them. Fed 150 events/s over 3,008 partitions, the broker used 81-83% of a
core with one reader of them all, 39-45% with 24 readers of ~125, and 13-16% producing alone (a
real agent reads one partition).

A real agent sees Argo CD sync an Application through its watch; here the simulated Argo CD's sync
(``argocd_sync_delay`` after an apply) tells the agent the same way (``Agent.mark_changed``), so
status flows when it changes and the periodic ``refresh`` is only the safety net, as in a cluster.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

from maestro.agent.agent_loop import Agent
from maestro.agent.applier import ApplyResult
from maestro.agent.memory import MemoryApplier
from maestro.api import consumers
from maestro.transport import layout
from maestro.transport.connection import KafkaSettings
from maestro.transport.consumer import Reader
from maestro.transport.messages import Incoming
from maestro.transport.producer import Publisher
from trust.identity import Identity

PARTITIONS_PER_READER = 128
#: the identity every simulated agent of a process speaks as
FLEET = Identity.service("bench-agents")


class SimulatedFleet:
    def __init__(
        self,
        kafka: KafkaSettings,
        names: layout.Layout,
        *,
        argocd_sync_delay: float = 0.0,
        on_applied: Callable[[str, Mapping[str, Any], float], None] | None = None,
    ) -> None:
        self._kafka = kafka
        self._names = names
        self._publisher = Publisher(kafka, client_id="simulated-agents")
        self._readers: list[Reader] = []
        self._sync_delay = argocd_sync_delay
        self._on_applied = on_applied
        self.agents: dict[tuple[str, int], Agent] = {}
        self._task: asyncio.Task[None] | None = None
        self._watches: list[asyncio.Task[None]] = []

    async def add(self, placements: list[consumers.Consumer]) -> None:
        """Agents for these clusters, read by readers of their own (call before ``start``)."""
        added: dict[tuple[str, int], Agent] = {}
        for consumer in placements:
            applier = MemoryApplier(consumer.name, argocd_sync_delay=self._sync_delay)
            # as a real agent publishes: a report Kafka is slow to acknowledge (3,000 agents starting
            # at once) is waited for, never the end of the run
            agent = Agent(applier, self._publisher.deliver, status_topic=consumer.status_topic)
            _after_apply(applier, self._applied_callback(agent))
            added[(consumer.spec_placement.topic, consumer.spec_placement.partition)] = agent
        self.agents |= added
        keys = sorted(added)
        for first in range(0, len(keys), PARTITIONS_PER_READER):
            reader = Reader(self._kafka, self._names.agent_group("simulated"), client_id="simulated-agents")
            self._readers.append(reader)
            await asyncio.to_thread(reader.assign, keys[first : first + PARTITIONS_PER_READER])
        await asyncio.gather(*(a.start() for a in added.values()))

    def _applied_callback(self, agent: Agent) -> Callable[[str, Mapping[str, Any]], None]:
        loop = asyncio.get_running_loop()
        # a hair after the sync is due, so the re-read finds it done
        delay = self._sync_delay + 0.05

        def applied(resource_id: str, bundle: Mapping[str, Any]) -> None:
            if self._on_applied is not None:
                self._on_applied(resource_id, bundle, loop.time())
            if any(m.get("kind") == "Application" for m in bundle.get("manifests") or ()):
                loop.call_later(delay, agent.mark_changed, {resource_id})

        return applied

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        # A thread per reader, so that each reader's poll waits (and gathers a batch) at once.
        with concurrent.futures.ThreadPoolExecutor(len(self._readers), "simulated-readers") as pool:
            while True:
                batches = await asyncio.gather(
                    *(loop.run_in_executor(pool, r.poll_batch_sync, 5000, 0.1) for r in self._readers)
                )
                await self._handle([(r, m) for r, m in zip(self._readers, batches, strict=True) if m])

    async def _handle(self, polled: list[tuple[Reader, list[Incoming]]]) -> None:
        by_partition: dict[tuple[str, int], list[Incoming]] = defaultdict(list)
        for _, messages in polled:
            for m in messages:
                by_partition[(m.topic, m.partition)].append(m)
        await asyncio.gather(*(self.agents[key].handle(batch) for key, batch in by_partition.items()))
        await asyncio.gather(*(reader.commit(messages) for reader, messages in polled))

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="simulated-agents")
        self._watches = [
            asyncio.create_task(agent.changes_forever(), name="simulated-watch")
            for agent in self.agents.values()
        ]

    def lag(self) -> int | None:
        """Spec events the broker holds that the agents have not read yet (None: not known yet)."""
        found = [reader.lag() for reader in self._readers]
        return None if any(each is None for each in found) else sum(each or 0 for each in found)

    async def refresh(self) -> None:
        await asyncio.gather(*(a.refresh() for a in self.agents.values()))

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._watches) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for reader in self._readers:
            reader.close()
        await asyncio.to_thread(self._publisher.close)


def _after_apply(applier: MemoryApplier, applied: Callable[[str, Mapping[str, Any]], None]) -> None:
    """Call ``applied(resource_id, bundle)`` after each apply."""
    original = applier.apply

    async def apply(resource_id: str, version: int, bundle: Mapping[str, Any]) -> ApplyResult:
        result = await original(resource_id, version, bundle)
        applied(resource_id, bundle)
        return result

    applier.apply = apply  # type: ignore[method-assign]
