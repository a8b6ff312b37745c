"""The CPU every process of a ``bench fleet`` run used: by phase, and along the create phase."""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping

from localinfra import process
from localinfra.environment import Environment


def phase_cpu(
    before: Mapping[str, float], after: Mapping[str, float], applications: int
) -> tuple[dict[str, float], dict[str, float]]:
    """CPU seconds of each process between two readings (one that was not alive at both is left
    out) with their sum as ``all``, and the same in milliseconds per Application."""
    used = {name: after[name] - before[name] for name in after if name in before}
    used["all"] = sum(used.values())
    seconds = {name: round(v, 1) for name, v in used.items()}
    per_app = {name: round(1000 * v / max(applications, 1), 2) for name, v in used.items()}
    return seconds, per_app


class ProgressCpu:
    """CPU readings taken as a phase's count of finished Applications passes each ``1/parts`` of
    ``total``; ``per_application`` gives each stretch's CPU per Application finished in it."""

    def __init__(self, total: int, start: Mapping[str, float], parts: int = 10) -> None:
        self.total = total
        self.parts = parts
        self.readings: list[tuple[int, Mapping[str, float]]] = [(0, start)]

    def due(self, done: int) -> bool:
        """Whether ``done`` has reached the next reading's share of the total."""
        taken = len(self.readings)
        return done > self.readings[-1][0] and done * self.parts >= self.total * taken

    def add(self, done: int, cpu: Mapping[str, float]) -> None:
        """Record a reading (one at no more Applications finished than the last is left out)."""
        if done > self.readings[-1][0]:
            self.readings.append((done, cpu))

    def per_application(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for (done_before, before), (done_after, after) in itertools.pairwise(self.readings):
            if done_after > done_before:
                out[f"{done_before}-{done_after}"] = phase_cpu(before, after, done_after - done_before)[1]
        return out


def cpu_now(env: Environment) -> dict[str, float]:
    """CPU seconds so far of every process of the environment and of this one (the simulated
    agents and the observers run here; the processes it started are counted apart)."""
    own = os.times()
    return process.cpu_seconds(env.processes) | {"bench (this process)": own.user + own.system}
