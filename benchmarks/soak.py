"""``fleetplane bench soak``: a steady mix of work for minutes on end, and whether anything grows.

On real PostgreSQL and Kafka, a Maestro server process and simulated agents (the real agent code
over in-memory clusters, in this process, as ``bench pipeline`` runs them), a load keeps about
``works`` works alive across ``clusters`` clusters and, ``rate`` times a second, creates one,
updates one (a new revision of its Application), deletes one, or changes one's status on its
cluster (Argo CD finding it degraded, or healthy again: a status change with no new spec). Every
``interval`` seconds it samples each component's memory, descriptors and TCP connections
(``proc_sample``), the server's outbox depth and status ingest lag (its ``/metrics``) and the
agents' spec lag, and prints a line. The figures are each curve's first, last and highest value
and its trend over the last two thirds of the run (``soak_trends``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import tempfile
import urllib.request
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import maestro_setup, proc_sample, soak_trends
from benchmarks.pipeline import work_bundle
from benchmarks.progress import Progress
from benchmarks.simulated import SimulatedFleet
from localinfra import platform, ports
from localinfra.environment import Environment
from maestro.agent.agent_loop import Agent
from maestro.agent.memory import MemoryApplier
from maestro.api import bundles, consumers
from maestro.client import MaestroClient

#: the share of each kind of operation while the live works are near their target
MIX = {"create": 0.2, "update": 0.4, "delete": 0.2, "status": 0.2}
#: how far the live works may stray from their target before only creates or deletes are sent
BAND = 0.1
#: the seconds simulated Argo CD takes to sync an Application after it is applied
SYNC_DELAY = 0.2
HEALTH = ("Healthy", "Degraded")
AGENT_LAG = "agent spec lag"


@dataclass(frozen=True)
class SoakSettings:
    minutes: float
    clusters: int = 10
    works: int = 200
    #: operations per second
    rate: float = 10.0
    #: seconds between samples (and progress lines)
    interval: float = 30.0
    insecure: bool = False
    seed: int = 27


@dataclass
class _Work:
    cluster: str
    index: int
    revision: int = 1
    health: int = 0


@dataclass
class _Load:
    """The works alive and what was sent; ``step`` sends one operation."""

    client: MaestroClient
    agents: Mapping[str, Agent]
    target: int
    rng: random.Random
    live: dict[uuid.UUID, _Work] = field(default_factory=dict)
    sent: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    #: the first failure of each kind, as a user would want to read it
    first_failure: dict[str, str] = field(default_factory=dict)
    _next_index: int = 0

    def choose(self) -> str:
        if len(self.live) < self.target * (1 - BAND):
            return "create"
        if len(self.live) > self.target * (1 + BAND):
            return "delete"
        return self.rng.choices(list(MIX), weights=list(MIX.values()))[0]

    async def step(self) -> None:
        kind = self.choose()
        if kind != "create" and not self.live:
            kind = "create"
        try:
            await getattr(self, f"_{kind}")()
            self.sent[kind] += 1
        except Exception as exc:  # counted and shown, the soak goes on
            self.failed[kind] += 1
            self.first_failure.setdefault(kind, f"{type(exc).__name__}: {exc}")

    async def _create(self) -> None:
        cluster = self.rng.choice(sorted(self.agents))
        self._next_index += 1
        rid = uuid.uuid4()
        work = _Work(cluster, self._next_index)
        await self.client.apply(cluster, rid, _bundle(work))
        self.live[rid] = work

    async def _update(self) -> None:
        rid = self.rng.choice(list(self.live))
        work = self.live[rid]
        work.revision += 1
        await self.client.apply(work.cluster, rid, _bundle(work), create=False)

    async def _delete(self) -> None:
        rid = self.rng.choice(list(self.live))
        work = self.live.pop(rid)
        await self.client.delete(work.cluster, rid)

    async def _status(self) -> None:
        rid = self.rng.choice(list(self.live))
        work = self.live[rid]
        agent = self.agents[work.cluster]
        assert isinstance(agent.applier, MemoryApplier)
        key = ("argoproj.io", "applications", "argocd", f"guestbook-{work.index}")
        work.health = 1 - work.health
        health = {"sync": {"status": "Synced"}, "health": {"status": HEALTH[work.health]}}
        if agent.applier.backend.write_status(key, health):
            agent.mark_changed({str(rid)})


def _bundle(work: _Work) -> bundles.ManifestBundle:
    bundle = work_bundle(work.cluster, work.index)
    bundle.manifests[0]["spec"]["source"]["targetRevision"] = f"v{work.revision}"
    return bundle


@dataclass
class SoakResult:
    figures: dict[str, Any]
    #: panel -> (its y axis, curve -> (seconds, value) points)
    panels: dict[str, tuple[str, dict[str, list[tuple[float, float]]]]]


class _Curves:
    """Every sampled series, by panel."""

    PANELS = {
        "memory": "MB (proportional set size)",
        "descriptors": "open file descriptors",
        "connections": "TCP connections",
        "backlog": "events waiting",
    }

    def __init__(self) -> None:
        self.panels: dict[str, dict[str, list[tuple[float, float]]]] = {p: {} for p in self.PANELS}

    def add(self, panel: str, name: str, second: float, value: float | None) -> None:
        if value is not None:
            self.panels[panel].setdefault(name, []).append((round(second, 1), float(value)))

    def last(self, panel: str, name: str) -> float | None:
        points = self.panels[panel].get(name)
        return points[-1][1] if points else None


async def run(settings: SoakSettings, progress: Progress) -> SoakResult:
    root = Path(tempfile.mkdtemp(prefix="fleetplane-soak-"))
    env = Environment(root / "env")
    finished = False
    try:
        pg, kf, security = maestro_setup.start_stores(env, progress, insecure=settings.insecure)
        metrics = ["--metrics-port", str(ports.free_port())]
        server, address, names = await maestro_setup.start_server(env, pg, kf, root, security, extra=metrics)
        url = platform.metrics_url(server.argv)
        assert url is not None
        fleet_kafka = await maestro_setup.fleet_kafka(security, kf, names)
        components = {
            "maestro-server": server.pid,
            "postgres": env.processes["postgres"].pid,
            "kafka": env.processes["kafka"].pid,
            "bench (load, agents)": os.getpid(),
        }
        async with MaestroClient(address, source="soak", credentials=security.credentials()) as client:
            registered = [await client.create_consumer(f"soak-{i:03d}") for i in range(settings.clusters)]
            fleet = SimulatedFleet(fleet_kafka, names, argocd_sync_delay=SYNC_DELAY)
            await fleet.add(registered)
            fleet.start()
            try:
                result = await _soak(settings, client, fleet, registered, components, url, progress)
            finally:
                await fleet.stop()
        finished = True
    finally:
        maestro_setup.end_run(env, root, keep_logs=not finished, report=progress)
    return result


async def _soak(
    settings: SoakSettings,
    client: MaestroClient,
    fleet: SimulatedFleet,
    registered: list[consumers.Consumer],
    components: Mapping[str, int],
    metrics_url: str,
    progress: Progress,
) -> SoakResult:
    by_topic = {key[0]: agent for key, agent in fleet.agents.items()}
    agents = {c.name: by_topic[c.spec_placement.topic] for c in registered}
    load = _Load(client, agents, settings.works, random.Random(settings.seed))
    curves = _Curves()
    loop = asyncio.get_running_loop()
    started = loop.time()
    duration = settings.minutes * 60
    progress(
        f"[bench] soaking for {settings.minutes:g} min: {settings.rate:g} operations/s over about "
        f"{settings.works} works on {settings.clusters} clusters, a sample every {settings.interval:g}s"
    )

    async def operate() -> None:
        sent = 0
        while loop.time() - started < duration:
            await asyncio.sleep(max(0.0, started + sent / settings.rate - loop.time()))
            await load.step()
            sent += 1

    operating = asyncio.create_task(operate(), name="soak-load")
    try:
        while True:
            second = loop.time() - started
            await _sample(curves, second, components, metrics_url, fleet)
            progress(_line(second, settings, load, curves, components))
            if second >= duration:
                break
            await asyncio.sleep(min(settings.interval, max(0.0, duration - second)))
    finally:
        operating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await operating
    panels = {panel: (curves.PANELS[panel], series) for panel, series in curves.panels.items()}
    figures = {
        "minutes": settings.minutes,
        "clusters": settings.clusters,
        "works kept alive": settings.works,
        "operations/s": settings.rate,
        "operations sent": dict(load.sent),
        "operations failed": dict(load.failed) or "none",
        **({"first failures": load.first_failure} if load.first_failure else {}),
        "works alive at the end": len(load.live),
        "trends (last two thirds)": _trend_rows(curves),
    }
    return SoakResult(figures, panels)


async def _sample(
    curves: _Curves,
    second: float,
    components: Mapping[str, int],
    metrics_url: str,
    fleet: SimulatedFleet,
) -> None:
    def read() -> tuple[dict[str, proc_sample.Usage], dict[str, float]]:
        tcp = proc_sample.tcp_sockets()
        # the bench process started the others: each is counted as itself alone
        roots = frozenset(components.values())
        used = {name: proc_sample.usage(pid, tcp, apart=roots) for name, pid in components.items()}
        return used, _scrape(metrics_url)

    used, scraped = await asyncio.to_thread(read)
    for name, usage in used.items():
        curves.add("memory", name, second, usage.pss_mb)
        curves.add("descriptors", name, second, usage.fds)
        curves.add("connections", name, second, usage.tcp)
    curves.add("backlog", "outbox", second, scraped.get("maestro_outbox_events"))
    curves.add("backlog", "status ingest lag", second, scraped.get("maestro_status_ingest_lag_messages"))
    curves.add("backlog", AGENT_LAG, second, fleet.lag())


def _scrape(url: str) -> dict[str, float]:
    """The server's metrics, each name's values summed over its labels ({} if it did not answer)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            text = answer.read().decode()
    except OSError:
        return {}
    return parse_metrics(text)


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus' text format: each sample's name (without labels) -> the sum of its values."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_and_labels, _, value = line.rpartition(" ")
        name = name_and_labels.split("{", 1)[0]
        with contextlib.suppress(ValueError):
            found[name] = found.get(name, 0.0) + float(value)
    return found


def _line(
    second: float, settings: SoakSettings, load: _Load, curves: _Curves, components: Mapping[str, int]
) -> str:
    def shown(panel: str, name: str, unit: str = "") -> str:
        value = curves.last(panel, name)
        return "-" if value is None else f"{value:g}{unit}"

    parts = [
        f"{name} {shown('memory', name, 'MB')} fd {shown('descriptors', name)} "
        f"tcp {shown('connections', name)}"
        for name in components
    ]
    sent = ", ".join(f"{kind} {count}" for kind, count in sorted(load.sent.items()))
    return (
        f"[bench] {second / 60:5.1f}/{settings.minutes:g} min: sent {sent or 'nothing yet'}; "
        f"{len(load.live)} alive | {' | '.join(parts)} | outbox {shown('backlog', 'outbox')}, "
        f"ingest lag {shown('backlog', 'status ingest lag')}, "
        f"agents' lag {shown('backlog', AGENT_LAG)}"
    )


def _trend_rows(curves: _Curves) -> dict[str, dict[str, Any]]:
    """Per curve (``panel: name``): first, last, highest, and the trend's growth and slope."""
    rows: dict[str, dict[str, Any]] = {}
    for panel, series in curves.panels.items():
        for name, about in soak_trends.summary(series).items():
            fitted = about["trend"]
            rows[f"{panel}: {name}"] = {
                "first": about["first"],
                "last": about["last"],
                "max": about["max"],
                "growth %": "-" if not fitted or fitted["growth_pct"] is None else fitted["growth_pct"],
                "slope/min": "-" if not fitted else fitted["slope_per_min"],
            }
    return rows
