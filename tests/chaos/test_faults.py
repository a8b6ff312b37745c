"""Each fault in turn strikes a rollout on the real pipeline, and the outcome is exact.

One pipeline for the whole suite (`tests.chaos.environment`: two Maestro replicas, PostgreSQL with
fsync on, the session's three-broker Kafka, a real agent per worker cluster, one of them behind
relays). Each
test runs a rollout of ``WORKS`` works (created, every third updated, every fifth deleted) through
both replicas and strikes it a third of the way through its calls with one fault; then waits,
bounded, until the outcome is exact (`benchmarks.chaos.outcome`): every ConfigMap in its cluster and no
other, at its last revision, one applied record per (resource, version) owning the live object,
every status of the last version stored and applied, deleted works gone everywhere, no status
sequence id sent or stored twice, the outbox empty. The pipeline is whole again before the next.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from benchmarks.chaos.faults import KillPostgres, KillProcess
from tests.chaos.environment import POSTGRES, Chaos
from tests.chaos.faults import CutNetwork, Fault, KillBroker, roll_out_through

pytestmark = pytest.mark.chaos

WORKS = 200

FAULTS: dict[str, Callable[[Chaos], Fault]] = {
    "maestro-replica": lambda chaos: KillProcess(chaos.servers[0]),
    "agent": lambda chaos: KillProcess(chaos.agents[1]),
    "agent-kafka-cut": lambda chaos: CutNetwork(chaos.relays, chaos),
    "postgres": lambda chaos: KillPostgres(chaos.env, POSTGRES),
    "kafka-broker": lambda chaos: KillBroker(chaos.brokers, chaos),
}


@pytest.mark.parametrize("fault", FAULTS)
async def test_a_rollout_struck_by_a_fault_ends_exact(chaos: Chaos, fault: str) -> None:
    struck = FAULTS[fault](chaos)
    figures = await roll_out_through(chaos, struck, WORKS)
    print(
        f"{struck.name}: "
        + ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items())
    )
