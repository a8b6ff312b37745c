"""What ``bench fleet`` counts as it runs: hub Applications from a watch, works at each revision
from the simulated agents' applies, works in Maestro by a count; sampled each second, for the
phases' ends, the progress lines and the run's timeline."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.fleet.cpu import ProgressCpu
from benchmarks.fleet.workload import ARGOCD, REVISIONS, target_revision
from benchmarks.progress import Progress
from controllers import contract
from kubeio import watch
from kubeio.rest import KubeRest
from maestro.api import queries
from maestro.client import MaestroClient

# (Synced and Healthy, sync.revision) of one hub Application
AppSummary = tuple[bool, str]


def summarize(app: Mapping[str, Any]) -> AppSummary:
    status = app.get("status") or {}
    sync = status.get("sync") or {}
    ok = sync.get("status") == "Synced" and (status.get("health") or {}).get("status") == "Healthy"
    return ok, str(sync.get("revision") or "")


def count_apps(
    apps: Mapping[str, AppSummary], old_revisions: Mapping[str, str] | None = None
) -> dict[str, int]:
    """Hub Applications: total, Synced+Healthy, and (given the revisions before a change) those
    Synced+Healthy at another revision; ``no_revision`` counts Synced ones without a revision."""
    ready = moved = no_revision = 0
    for key, (ok, revision) in apps.items():
        if not ok:
            continue
        ready += 1
        if not revision:
            no_revision += 1
        if old_revisions is not None and revision and revision != old_revisions.get(key):
            moved += 1
    return {"apps": len(apps), "ready": ready, "moved": moved, "no_revision": no_revision}


class AppliedRevisions:
    """How many works the simulated agents last applied at each ``targetRevision``, kept per apply.

    The template change is timed to the last agent's apply of the new template, not by listing every
    work with its spec from Maestro: at 150,000 works a listing is ~180 MB of specs, seconds of the
    server's time, taken from the system it measures.
    """

    def __init__(self) -> None:
        self._revisions: dict[str, str | None] = {}
        self._counts: dict[str | None, int] = defaultdict(int)

    def applied(self, resource_id: str, bundle: Mapping[str, Any], at: float) -> None:
        revision = target_revision(bundle)
        if resource_id in self._revisions:
            self._counts[self._revisions[resource_id]] -= 1
        self._revisions[resource_id] = revision
        self._counts[revision] += 1

    def count(self, revision: str) -> int:
        return self._counts.get(revision, 0)


def app_key(app: Mapping[str, Any]) -> str:
    meta = app.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def spec_revision(app: Mapping[str, Any]) -> str:
    """The ``targetRevision`` a hub Application's spec asks for."""
    return str(((app.get("spec") or {}).get("source") or {}).get("targetRevision") or "")


class MirrorLatency:
    """Per hub Application: seconds from its mirror asking for a revision (the mirror created, or
    its spec's ``targetRevision`` changed) to its status first saying it is there (Synced/Healthy;
    after a change, at a revision other than the one reported when it was asked). That is the
    trip through Maestro, an agent and back to the hub, as the run's load makes it.
    """

    def __init__(self) -> None:
        #: per Application: (spec revision asked for, status revision then or None for a new
        #: mirror, when)
        self._asked: dict[str, tuple[str, str | None, float]] = {}
        self._waiting: set[str] = set()
        #: (when it finished, seconds it took), in the order they finished
        self.finished: list[tuple[float, float]] = []

    def seen(self, key: str, app: Mapping[str, Any], summary: AppSummary, at: float) -> None:
        ok, revision = summary
        wanted = spec_revision(app)
        asked = self._asked.get(key)
        if asked is None or asked[0] != wanted:
            asked = self._asked[key] = (wanted, None if asked is None else revision, at)
            self._waiting.add(key)
        _, before, since = asked
        if key in self._waiting and ok and (before is None or (revision and revision != before)):
            self._waiting.discard(key)
            self.finished.append((at, at - since))

    def gone(self, key: str) -> None:
        self._asked.pop(key, None)
        self._waiting.discard(key)


class HubApps:
    """Every hub Application's summary, kept by one list-and-watch.

    Listing every Application once a second would be, at fleet scale, a large share of the hub
    kube-apiserver's work: the benchmark would slow what it measures. A watch costs the server one
    event per change, served from its watch cache. The same events time each mirror's trip
    (``latency``).
    """

    PATH = f"/apis/{ARGOCD[0]}/{ARGOCD[1]}/applications"

    def __init__(self, rest: KubeRest) -> None:
        self.rest = rest
        self.apps: dict[str, AppSummary] = {}
        self.listed = asyncio.Event()
        # Revisions before a template change, once one is timed.
        self.old_revisions: Mapping[str, str] | None = None
        # `count_apps`' figures, kept as changes come: counting 150,000 each second took ~4% of a
        # core from the machine under test.
        self._counts = count_apps({})
        self.latency = MirrorLatency()

    async def run(self) -> None:
        await watch.follow(self.rest, self.PATH, self._listed, self._changed)

    def counts(self) -> dict[str, int]:
        return {**self._counts, "apps": len(self.apps)}

    def compare_with(self, old_revisions: Mapping[str, str]) -> None:
        """Count as ``moved`` the Applications Synced+Healthy at a revision other than these."""
        self.old_revisions = old_revisions
        self._counts = count_apps(self.apps, old_revisions)

    def _listed(self, items: Sequence[dict[str, Any]]) -> None:
        now = time.monotonic()
        self.apps = {}
        for app in items:
            key = app_key(app)
            self.apps[key] = summary = summarize(app)
            self.latency.seen(key, app, summary, now)
        self._counts = count_apps(self.apps, self.old_revisions)
        self.listed.set()

    def _changed(self, kind: str, app: dict[str, Any]) -> None:
        key = app_key(app)
        before = self.apps.pop(key, None)
        if before is not None:
            self._tally(key, before, -1)
        if kind == "DELETED":
            self.latency.gone(key)
        else:
            self.apps[key] = summary = summarize(app)
            self._tally(key, summary, 1)
            self.latency.seen(key, app, summary, time.monotonic())

    def _tally(self, key: str, summary: AppSummary, sign: int) -> None:
        for name, value in count_apps({key: summary}, self.old_revisions).items():
            if name != "apps":
                self._counts[name] += sign * value

    def revisions(self) -> dict[str, str]:
        return {key: revision for key, (_, revision) in self.apps.items()}


@dataclass
class Sample:
    works: int = 0
    works_new: int = 0
    apps: int = 0
    ready: int = 0
    moved: int = 0
    no_revision: int = 0
    at: float = 0.0
    phase: str = ""


#: each phase's step as a progress bar shows it
STEPS = {
    "create": "create: hub Applications Synced/Healthy",
    "update": "update: hub Applications at the new revision",
    "delete": "delete: hub Applications removed",
}


class Sampler:
    """Counts works in Maestro and hub Applications each second, keeps every sample (``history``)
    and tells ``progress`` how far the phase is.

    Hub Applications come from a watch (``HubApps``). Works are counted by Maestro (one SQL
    count): every sample while deleting (the phase ends when none is left), every 5 s otherwise,
    for the progress line; a list of 150,000 works would take seconds of the server's time, from the
    system under test. Works at the new template are those the simulated agents applied
    (``AppliedRevisions``).
    """

    COUNT_EVERY = 5.0

    def __init__(
        self,
        client: MaestroClient,
        apps: HubApps,
        applied: AppliedRevisions,
        progress: Progress,
        read_cpu: Callable[[], Mapping[str, float]],
    ) -> None:
        self.client = client
        self.apps = apps
        self.applied = applied
        self.progress = progress
        self.latest = Sample()
        self.history: list[Sample] = []
        self.target_revision = REVISIONS[0]
        self.phase = "setup"
        self._total = 0
        self._works_counted = 0.0
        self._fresh = asyncio.Event()
        #: set during the create phase: CPU read at each tenth of the Applications Synced/Healthy
        self.cpu_by_progress: ProgressCpu | None = None
        self.read_cpu = read_cpu

    def begin(self, phase: str, total: int) -> None:
        """``phase`` starts; it is done when ``total`` hub Applications have done it."""
        self.phase, self._total = phase, total
        self.progress.step(STEPS[phase], total)

    def done(self) -> int:
        """How many hub Applications have done the phase under way, as of the latest sample."""
        s = self.latest
        return {"create": s.ready, "update": s.moved, "delete": self._total - s.apps}.get(self.phase, 0)

    async def sample(self, *, works_too: bool = False) -> Sample:
        at = time.monotonic()
        works, works_new = self.latest.works, self.latest.works_new
        where = queries.ResourceFilter(source=contract.MAESTRO_SOURCE)
        if works_too or self.phase == "delete" or at - self._works_counted >= self.COUNT_EVERY:
            works = await self.client.count(where)
            self._works_counted = at
        if self.phase == "update":
            works_new = self.applied.count(self.target_revision)
        counts = self.apps.counts()
        return Sample(works, works_new, at=at, phase=self.phase, **counts)

    async def run(self) -> None:
        while True:
            try:
                self.latest = await self.sample()
                self.history.append(self.latest)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a transient read failure: report it, sample again
                self.progress(f"[bench]   (sample failed: {type(exc).__name__}: {exc})")
            cpu = self.cpu_by_progress
            if cpu is not None and cpu.due(self.latest.ready):
                cpu.add(self.latest.ready, await asyncio.to_thread(self.read_cpu))
            self._fresh.set()
            self.progress.advance(self.done(), self._line())
            await asyncio.sleep(1)

    def _line(self) -> str:
        s = self.latest
        extra = f", at new revision {s.moved}" if self.apps.old_revisions is not None else ""
        new = f" (applied at the new template {s.works_new})" if self.phase == "update" else ""
        return (
            f"[bench]   {self.phase}: works in Maestro {s.works}{new}, "
            f"hub Applications {s.apps}, Synced+Healthy {s.ready}{extra}"
        )

    async def until(self, check: Callable[[Sample], bool], since: float, timeout: float) -> float | None:
        """Seconds from ``since`` to the first sample taken after ``since`` that passes ``check``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._fresh.clear()
            s = self.latest
            if s.at > since and check(s):
                return s.at - since
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.1, deadline - time.monotonic())):
                    await self._fresh.wait()
        return None

    def reached(self) -> dict[str, int]:
        s = self.latest
        return {
            "works": s.works,
            **({"works_new_template": s.works_new} if self.phase == "update" else {}),
            "hub_apps": s.apps,
            "synced_healthy": s.ready,
            "at_new_revision": s.moved,
        }
