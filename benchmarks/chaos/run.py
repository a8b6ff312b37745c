"""``fleetplane bench chaos``: each fault of the chaos suite struck at scale, and how long it took.

For each fault in turn (`faults.FAULTS`), a rollout of ``works`` works on the pipeline
(`pipeline`: two Maestro replicas, PostgreSQL with fsync on, three Kafka brokers, simulated agent
processes) — every work created, every third updated, every fifth deleted, as the chaos suite's
rollout — is struck by the fault a third of the way through its calls. Then the benchmark waits,
bounded, until the outcome is exact by the suite's own rules (`outcome.judge`). Per fault: the
calls and how many were sent again, the seconds from the fault to its recovery and from the
rollout's last accepted call to the exact outcome, and the verdict.

The kills of the operators' leaders (`leader_faults`: ``controllers-leader``, ``provisioner-leader``)
strike their own workloads instead (ApplicationSets, ClusterClaims), on a hub started for them
once, with the same pipeline underneath; per fault the seconds from the kill to the standby leading
and to the exact outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import maestro_setup
from benchmarks.chaos import leader_faults, outcome
from benchmarks.chaos import pipeline as chaos_pipeline
from benchmarks.chaos.faults import FAULTS, Fault
from benchmarks.chaos.rollout import Rollout, rolling
from benchmarks.progress import Progress
from localinfra.environment import Environment

#: the share of the rollout's calls accepted before the fault strikes
STRIKE_AT = 1 / 3
EXACT = "exact"
#: every fault, by the name ``--faults`` takes, in the order they are struck
ALL_FAULTS = (*FAULTS, leader_faults.CONTROLLERS, leader_faults.PROVISIONER)


@dataclass(frozen=True)
class ChaosSettings:
    works: int = 2000
    faults: Sequence[str] = ALL_FAULTS
    #: simulated agent processes (clusters)
    agents: int = 4
    #: Kafka brokers: 3 (topics replicated three times, two in sync), or 1 (no broker fault)
    brokers: int = 3
    #: seconds to wait for the exact outcome after a rollout's last call
    converge_timeout: float = 600.0


async def run(settings: ChaosSettings, progress: Progress) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="fleetplane-chaos-"))
    env = Environment(root / "env")
    pipeline: chaos_pipeline.ChaosPipeline | None = None
    hub: leader_faults.LeaderHub | None = None
    results: dict[str, dict[str, Any]] = {}
    loads: list[float] = []
    sampling = asyncio.create_task(_sample_load(loads), name="chaos-load-average")
    try:
        pipeline = await chaos_pipeline.start(env, root, settings.agents, settings.brokers, progress)
        for name in settings.faults:
            if name in FAULTS:
                results[name] = await _strike(pipeline, FAULTS[name](pipeline), settings, progress)
                continue
            if down := pipeline.not_running():
                results[name] = {"verdict": f"not struck: {', '.join(down)} not running"}
                continue
            try:
                hub = hub or await leader_faults.start(pipeline, progress)
            except Exception as exc:  # the next fault still runs; the logs are kept
                results[name] = {"verdict": f"not struck: the hub did not start: {exc!r}"}
                continue
            results[name] = await leader_faults.strike(
                name, pipeline, hub, settings.works, settings.converge_timeout, progress
            )
    finally:
        sampling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampling
        if hub is not None:
            await hub.close()
        if pipeline is not None:
            await pipeline.close()
        whole = len(results) == len(settings.faults) and all(r["verdict"] == EXACT for r in results.values())
        await asyncio.to_thread(maestro_setup.end_run, env, root, keep_logs=not whole, report=progress)
    return {
        "works per rollout": settings.works,
        "simulated agents": settings.agents,
        "Kafka brokers": settings.brokers,
        "load average (1 min; mean, max)": _load_figure(loads),
        "faults": results,
    }


async def _strike(
    pipeline: chaos_pipeline.ChaosPipeline, fault: Fault, settings: ChaosSettings, progress: Progress
) -> dict[str, Any]:
    down = pipeline.not_running()
    if down:
        return {"verdict": f"not struck: {', '.join(down)} not running"}
    rollout = pipeline.rollout(settings.works)
    progress(f"[bench] {fault.name}: a rollout of {settings.works} works ({rollout.total} calls)")
    progress.step(fault.name, rollout.total)
    ticking = asyncio.create_task(_tick(rollout, fault.name, progress), name="chaos-progress")
    finished: list[float] = []
    try:
        async with rolling(rollout) as task:
            task.add_done_callback(lambda _: finished.append(time.monotonic()))
            await rollout.until_acknowledged(int(rollout.total * STRIKE_AT), timeout=600)
            struck_at = rollout.acknowledged
            progress(f"[bench] {fault.name}: struck after {struck_at}/{rollout.total} calls")
            injected = time.monotonic()
            await fault.inject()
            await fault.hold(rollout)
            await fault.recover()
            recovered = time.monotonic()
            progress(f"[bench] {fault.name}: recovered after {recovered - injected:.1f}s")
    except Exception as exc:  # the next fault still runs; the logs are kept
        return {**_calls(rollout), "verdict": f"failed: {exc}"}
    finally:
        ticking.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticking
    last_call = finished[0] if finished else time.monotonic()
    progress(f"[bench] {fault.name}: every call accepted; waiting for the exact outcome ...")
    verdict = await pipeline.until_exact(rollout, settings.converge_timeout)
    exact_at = time.monotonic()
    said = _verdict(verdict, rollout.retries, settings.converge_timeout)
    progress(f"[bench] {fault.name}: {said}, {exact_at - last_call:.1f}s after the last call")
    return {
        **_calls(rollout),
        "struck after calls": struck_at,
        "fault to recovered s": round(recovered - injected, 1),
        "last call to exact s": round(exact_at - last_call, 1) if verdict.exact else None,
        "verdict": said,
    }


def _calls(rollout: Rollout) -> dict[str, Any]:
    return {
        "calls": rollout.total,
        "retried calls": sum(rollout.retries.values()),
        "retries by reason": ", ".join(f"{k} {v}" for k, v in sorted(rollout.retries.items())) or "-",
    }


def _verdict(verdict: outcome.Verdict, retries: dict[str, int], timeout: float) -> str:
    # A source is told to send a call again (UNAVAILABLE), never handed an unexplained UNKNOWN.
    if "UNKNOWN" in retries:
        return f"calls failed UNKNOWN ({retries['UNKNOWN']})"
    if verdict.exact:
        return EXACT
    if verdict.violations:
        return f"violated: {'; '.join(verdict.violations[:3])}"
    example = "; ".join(verdict.pending[:2])
    return f"not exact within {timeout:.0f}s: {len(verdict.pending)} pending, e.g. {example}"


async def _tick(rollout: Rollout, name: str, progress: Progress) -> None:
    while True:
        retried = sum(rollout.retries.values())
        progress.advance(
            rollout.acknowledged,
            f"[bench] {name}: {rollout.acknowledged}/{rollout.total} calls accepted, {retried} sent again",
        )
        await asyncio.sleep(1)


async def _sample_load(loads: list[float], every: float = 5.0) -> None:
    while True:
        loads.append(os.getloadavg()[0])
        await asyncio.sleep(every)


def _load_figure(loads: list[float]) -> str:
    if not loads:
        return "-"
    return f"{sum(loads) / len(loads):.2f}, {max(loads):.2f}"
