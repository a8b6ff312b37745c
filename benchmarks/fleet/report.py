"""What ``bench fleet`` reports: its figures, the processes' peak memory, and the run's timeline."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.fleet.sampler import Sample
from benchmarks.timeline import Timeline, latency_per_second, rises
from localinfra import process
from localinfra.environment import Environment


@dataclass
class FleetResult:
    clusters: int
    apps_per_cluster: int
    total: int
    #: plaintext with no authorization for gRPC and Kafka (--insecure), not TLS, certificates and ACLs
    insecure: bool = False
    #: phases left out with ``--phases`` (their figures stay null)
    skipped_phases: list[str] = field(default_factory=list)
    setup_seconds: float = 0.0
    create_seconds: float | None = None
    create_reached: dict[str, int] = field(default_factory=dict)
    update_works_seconds: float | None = None
    update_seconds: float | None = None
    update_reached: dict[str, int] = field(default_factory=dict)
    delete_seconds: float | None = None
    delete_reached: dict[str, int] = field(default_factory=dict)
    #: Applications per second of each phase that finished (total / its seconds)
    create_per_s: float | None = None
    update_per_s: float | None = None
    delete_per_s: float | None = None
    hub_writes: int = 0
    hub_writes_seconds: float = 0.0
    hub_writes_per_s: float = 0.0
    hub_writes_by_verb: dict[str, int] = field(default_factory=dict)
    peak_rss_mb: dict[str, float] = field(default_factory=dict)
    #: CPU seconds each process used during each phase, and the same per Application in ms: where
    #: a phase's time goes on a machine whose cores every process shares
    cpu_seconds: dict[str, dict[str, float]] = field(default_factory=dict)
    cpu_ms_per_application: dict[str, dict[str, float]] = field(default_factory=dict)
    #: the create phase's CPU per Application between readings taken at each tenth of the
    #: Applications Synced/Healthy, keyed by the range of that count: whether an Application costs
    #: more while the fleet is larger (a cost that grows with what is stored) or the same
    create_cpu_ms_by_progress: dict[str, dict[str, float]] = field(default_factory=dict)
    #: with ``--compare-argocd-appset``: Argo CD's ApplicationSet controller creating the same
    #: Applications on the same hub, by its settings (``argocd_appset.ArgoRun``)
    argocd_appset: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def finish_rates(self) -> None:
        """Each finished phase's Applications per second, from its time."""
        for phase in PRICED_PHASES:
            seconds = getattr(self, f"{phase}_seconds")
            if seconds:
                setattr(self, f"{phase}_per_s", round(self.total / seconds, 1))


#: the phases whose rates ``bench fleet --compare`` prices
PRICED_PHASES = ("create", "update", "delete")
PRICED_RATES = tuple(f"{phase}_per_s" for phase in PRICED_PHASES)


def vm_hwm_mb(status_text: str) -> float:
    """Peak RSS (VmHWM) in MB from a /proc/<pid>/status text; 0 when absent."""
    for line in status_text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss(env: Environment) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, record in env.processes.items():
        if name in ("postgres", "kafka") or not process.is_alive(record):
            continue
        with contextlib.suppress(OSError):
            out[name] = round(vm_hwm_mb(Path(f"/proc/{record.pid}/status").read_text()), 1)
    out["bench (this process)"] = round(vm_hwm_mb(Path("/proc/self/status").read_text()), 1)
    return out


#: what each phase finishes, as a running count the sampler reads: (phase, series, count)
FINISHED: tuple[tuple[str, str, Callable[[Sample], int]], ...] = (
    ("create", "create: Applications Synced/Healthy", lambda s: s.ready),
    ("update", "update: works applied at the new template", lambda s: s.works_new),
    ("update", "update: Applications at the new revision", lambda s: s.moved),
    ("delete", "delete: works removed", lambda s: -s.works),
    ("delete", "delete: Applications removed", lambda s: -s.apps),
)


def timeline(
    samples: Sequence[Sample],
    phases: Mapping[str, float],
    mirror_latencies: Sequence[tuple[float, float]],
    start: float,
) -> Timeline:
    """The run by second from ``start``: how fast each phase's counts moved between samples (from
    the last sample before the phase: what a short phase did before its first sample counts too),
    and the latencies of the hub mirrors that reached what they asked for in each second."""
    rates = {}
    for phase, series, count in FINISHED:
        taken = [i for i, s in enumerate(samples) if s.phase == phase]
        if taken:
            during = samples[max(taken[0] - 1, 0) : taken[-1] + 1]
            rates[series] = rises([(s.at, float(count(s))) for s in during], start)
    return Timeline(
        phases={name: round(at - start, 3) for name, at in phases.items()},
        rates=rates,
        latencies={"hub mirror written -> Synced/Healthy": latency_per_second(mirror_latencies, start)},
    )
