"""``fleetplane bench fleet``: the hub controllers end to end at fleet scale.

Starts, in a temporary environment: etcd and a hub kube-apiserver (Argo CD's CRDs, no Argo CD),
PostgreSQL, Kafka, the Maestro server (its own process), N Maestro consumers with N Argo CD
cluster Secrets on the hub, N simulated agents (the real agent code over in-memory appliers that
answer as a worker's Argo CD would: Synced/Healthy after ``argocd_sync_delay``), and the hub
controllers (``fleetplane controllers run``, its own process). Then it applies M opted-in
ApplicationSets, each with a ``clusters`` generator selecting all N clusters, and measures:

- create: until all N*M hub Applications are Synced/Healthy;
- update: a ``targetRevision`` change in all M ApplicationSets until every simulated agent has
  applied it and every hub Application reports Synced/Healthy at a revision other than its previous
  one (the simulated Argo CD derives the revision from the Application's spec);
- delete: all M ApplicationSets until no work and no hub Application remains;
- hub API writes/s (``apiserver_request_total`` of create/update/patch/delete/apply) and the peak
  RSS (VmHWM) of every process.

Every wait is bounded; a phase that times out is reported with what it reached, and the run goes on.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import re
import ssl
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client as kube_client
from kubernetes import config as kube_config

from controllers import contract
from kubeio import watch
from kubeio.rest import KubeRest
from localinfra import argocd, etcd, kafka, kube, kubectl, pki, postgres, process
from localinfra.environment import Environment
from maestro.api import queries
from maestro.bench import pipeline
from maestro.bench.simulated import SimulatedFleet
from maestro.client import MaestroClient
from maestro.transport import layout

Report = Callable[[str], None]

NAMESPACE = "argocd"
BENCH_LABEL = "fleetplane.io/bench"
ARGOCD = ("argoproj.io", "v1alpha1")
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection", "apply"})
REVISIONS = ("HEAD", "v2")
PHASES = frozenset({"create", "update", "delete"})


@dataclass
class FleetResult:
    clusters: int
    apps_per_cluster: int
    total: int
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
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- pure helpers (unit-tested) ----------------------------------------------------------------------


def parse_phases(text: str) -> frozenset[str]:
    """``--phases``: create always runs (the others need what it made); update and delete may be
    left out, e.g. to time create alone at a scale where all three would not fit the time at hand."""
    phases = frozenset(p.strip() for p in text.split(",") if p.strip())
    unknown = sorted(phases - PHASES)
    if unknown or "create" not in phases:
        raise ValueError(
            f"--phases {text!r}: expected a comma-separated list of create, update, delete that "
            "includes create (e.g. create or create,update,delete)"
        )
    return phases


def cluster_name(index: int) -> str:
    return f"cluster-{index:05d}"


def cluster_secret(name: str) -> dict[str, Any]:
    """An Argo CD cluster Secret of the pull model (name and server, no credentials)."""
    fields = {"name": name, "server": f"https://{name}.bench.invalid"}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {"argocd.argoproj.io/secret-type": "cluster", BENCH_LABEL: "true"},
        },
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in fields.items()},
    }


def application_set(index: int, target_revision: str = REVISIONS[0]) -> dict[str, Any]:
    """An opted-in ApplicationSet: a guestbook Application on every bench cluster."""
    name = f"guestbook-{index:03d}"
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {contract.PULL_LABEL: contract.PULL_LABEL_VALUE},
        },
        "spec": {
            "generators": [{"clusters": {"selector": {"matchLabels": {BENCH_LABEL: "true"}}}}],
            "template": {
                "metadata": {"name": f"{{{{name}}}}-{name}", "labels": {"app": "guestbook"}},
                "spec": {
                    "project": "default",
                    "source": {
                        "repoURL": "https://github.com/argoproj/argocd-example-apps.git",
                        "path": "guestbook",
                        "targetRevision": target_revision,
                    },
                    "destination": {"name": "{{name}}", "namespace": name},
                    "syncPolicy": {
                        "automated": {"prune": True, "selfHeal": True},
                        "syncOptions": ["CreateNamespace=true"],
                    },
                },
            },
        },
    }


_SAMPLE = re.compile(r"^apiserver_request_total\{([^}]*)\}\s+([0-9.eE+-]+)")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def write_counts(metrics_text: str) -> dict[str, int]:
    """Hub API writes by verb, summed over resources and codes, from a /metrics page."""
    out: dict[str, int] = {}
    for line in metrics_text.splitlines():
        match = _SAMPLE.match(line)
        if not match:
            continue
        labels = dict(_LABEL.findall(match.group(1)))
        verb = labels.get("verb", "").lower()
        if verb in WRITE_VERBS:
            out[verb] = out.get(verb, 0) + int(float(match.group(2)))
    return out


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


def _cpu_now(env: Environment) -> dict[str, float]:
    """CPU seconds so far of every process of the environment and of this one (the simulated
    agents and the observers run here; the processes it started are counted apart)."""
    own = os.times()
    return process.cpu_seconds(env.processes) | {"bench (this process)": own.user + own.system}


def vm_hwm_mb(status_text: str) -> float:
    """Peak RSS (VmHWM) in MB from a /proc/<pid>/status text; 0 when absent."""
    for line in status_text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


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


def target_revision(bundle: Mapping[str, Any]) -> str | None:
    """The ``targetRevision`` of the Application a work's bundle carries (its first manifest)."""
    manifests = bundle.get("manifests") or ()
    source = ((manifests[0].get("spec") or {}).get("source") or {}) if manifests else {}
    revision = source.get("targetRevision")
    return str(revision) if revision is not None else None


class AppliedRevisions:
    """How many works the simulated agents last applied at each ``targetRevision``, kept per apply.

    The template change is timed to the last agent's apply of the new template. Until session 10 the
    benchmark listed every work with its spec from Maestro each second instead: at 150,000 works a
    listing is ~180 MB of specs, seconds of the server's time, taken from the system it measures.
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


def _key(app: Mapping[str, Any]) -> str:
    meta = app.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


class HubApps:
    """Every hub Application's summary, kept by one list-and-watch.

    The sampler used to list every Application once a second; at fleet scale those lists were a
    large share of the hub kube-apiserver's work, so the benchmark slowed what it measured. A watch
    costs the server one event per change, served from its watch cache.
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

    async def run(self) -> None:
        await watch.follow(self.rest, self.PATH, self._listed, self._changed)

    def counts(self) -> dict[str, int]:
        return {**self._counts, "apps": len(self.apps)}

    def compare_with(self, old_revisions: Mapping[str, str]) -> None:
        """Count as ``moved`` the Applications Synced+Healthy at a revision other than these."""
        self.old_revisions = old_revisions
        self._counts = count_apps(self.apps, old_revisions)

    def _listed(self, items: Sequence[dict[str, Any]]) -> None:
        self.apps = {_key(app): summarize(app) for app in items}
        self._counts = count_apps(self.apps, self.old_revisions)
        self.listed.set()

    def _changed(self, kind: str, app: dict[str, Any]) -> None:
        key = _key(app)
        before = self.apps.pop(key, None)
        if before is not None:
            self._tally(key, before, -1)
        if kind != "DELETED":
            self.apps[key] = summary = summarize(app)
            self._tally(key, summary, 1)

    def _tally(self, key: str, summary: AppSummary, sign: int) -> None:
        for name, value in count_apps({key: summary}, self.old_revisions).items():
            if name != "apps":
                self._counts[name] += sign * value

    def revisions(self) -> dict[str, str]:
        return {key: revision for key, (_, revision) in self.apps.items()}


# --- the hub, read and written from threads ---------------------------------------------------------


class Hub:
    def __init__(self, cluster: kube.Cluster, env: Environment) -> None:
        configuration = kube_client.Configuration()
        kube_config.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=configuration)
        configuration.connection_pool_maxsize = 32
        self.api = kube_client.ApiClient(configuration)
        self.core = kube_client.CoreV1Api(self.api)
        self.custom = kube_client.CustomObjectsApi(self.api)
        self.server = cluster.server
        folder = env.root / "clusters" / cluster.name
        self._ca = env.root / "pki" / "ca.crt"
        self._admin = pki.KeyPair(folder / "admin.crt", folder / "admin.key")

    def create_secrets(self, names: list[str], workers: int = 16) -> None:
        def create(name: str) -> None:
            self.core.create_namespaced_secret(NAMESPACE, cluster_secret(name))  # type: ignore[arg-type]

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(create, names))

    def apply_application_set(self, body: dict[str, Any], attempts: int = 10) -> None:
        """Create or replace; a replace that lost a race with the controllers (their finalizer or
        status write) is read and tried again."""
        group, version = ARGOCD
        name = body["metadata"]["name"]
        for attempt in range(attempts):
            try:
                current: dict[str, Any] = self.custom.get_namespaced_custom_object(  # type: ignore[assignment]
                    group, version, NAMESPACE, "applicationsets", name
                )
            except kube_client.ApiException as exc:
                if exc.status != 404:
                    raise
                self.custom.create_namespaced_custom_object(
                    group, version, NAMESPACE, "applicationsets", body
                )
                return
            meta = {**body["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]}
            try:
                self.custom.replace_namespaced_custom_object(
                    group, version, NAMESPACE, "applicationsets", name, {**body, "metadata": meta}
                )
                return
            except kube_client.ApiException as exc:
                if exc.status != 409 or attempt == attempts - 1:
                    raise

    def delete_application_set(self, name: str) -> None:
        group, version = ARGOCD
        with contextlib.suppress(kube_client.ApiException):
            self.custom.delete_namespaced_custom_object(group, version, NAMESPACE, "applicationsets", name)

    def writes(self) -> dict[str, int]:
        ctx = ssl.create_default_context(cafile=str(self._ca))
        ctx.load_cert_chain(str(self._admin.cert), str(self._admin.key))
        with urllib.request.urlopen(f"{self.server}/metrics", context=ctx, timeout=30) as resp:
            return write_counts(resp.read().decode())

    def close(self) -> None:
        self.api.close()


def hub_go_runtime(memory_share: float = 0.4) -> dict[str, str]:
    """The hub API server's Go runtime for this load: a CPU profile of it at 15,000 Applications
    had a quarter of its time in the garbage collector, which at Go's default (collect each time
    the heap doubles) runs often on a heap that only grows. Collect at 5x instead, with a memory
    limit at ``memory_share`` of the machine's memory that brings collections back as it nears."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {"GOGC": "400", "GOMEMLIMIT": f"{int(total * memory_share) // 2**20}MiB"}


# The watch cache's consistency checker (beta, on by default since Kubernetes 1.34) lists every
# object of each resource from etcd every 5-7.5 minutes and decodes it to compare digests with the
# cache: a CPU profile of the hub at 45,000 Applications found it at 31% of the API server's time.
# A hub of 150,000 Applications turns it off and gives up that check of the watch cache.
HUB_FEATURE_GATES = {"DetectCacheInconsistency": False}


async def start_hub(env: Environment) -> kube.Cluster:
    """etcd and the hub kube-apiserver sized for this load, with Argo CD's CRDs and namespace."""
    etcd_url = await asyncio.to_thread(etcd.start, env, quota_gib=8)
    cluster = await asyncio.to_thread(
        kube.start, env, "hub", etcd_url, go_runtime=hub_go_runtime(), feature_gates=HUB_FEATURE_GATES
    )
    await asyncio.to_thread(argocd.install_crds, cluster)
    await asyncio.to_thread(
        kubectl.apply,
        cluster.kubeconfig,
        [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}],
    )
    return cluster


async def controllers_identity(cluster: kube.Cluster, folder: Path) -> Path:
    """A kubeconfig for the controllers' ServiceAccount, as they run in a hub: RBAC-checked on every
    request, its token's authentication cached by the API server, where the admin's certificate
    skips authorization but has its chain verified on every request (7% of the API server's CPU
    in a profile of mirror writes)."""
    return await asyncio.to_thread(
        kube.service_account_kubeconfig,
        cluster,
        NAMESPACE,
        "fleetplane-controllers",
        folder / "controllers.kubeconfig",
    )


@dataclass(frozen=True)
class StatusWrites:
    """How the controllers under test write hub statuses (their ``--write-*`` options)."""

    rate: float = 200.0
    concurrency: int = 16


# --- the run ------------------------------------------------------------------------------------------


async def run(
    clusters: int,
    apps_per_cluster: int,
    *,
    argocd_sync_delay: float = 1.0,
    refresh_seconds: float = 60.0,
    phase_timeout: float = 1800.0,
    writes: StatusWrites = StatusWrites(),
    phases: frozenset[str] = PHASES,
    report: Report = print,
) -> FleetResult:
    result = FleetResult(clusters, apps_per_cluster, clusters * apps_per_cluster)
    root = Path(tempfile.mkdtemp(prefix="fleetplane-bench-fleet-"))
    env = Environment(root / "env")
    started = time.monotonic()
    finished = False
    try:
        report("[bench] starting etcd, the hub kube-apiserver, PostgreSQL and Kafka ...")
        hub_cluster = await start_hub(env)
        pg = await asyncio.to_thread(postgres.start, env)
        kf = await asyncio.to_thread(kafka.start, env, heap="1g")
        _server, address, names = await pipeline.start_server(env, pg, kf, root)
        hub = Hub(hub_cluster, env)
        try:
            await _measure(
                result,
                env,
                hub,
                hub_cluster,
                address,
                kf.bootstrap,
                names,
                root,
                argocd_sync_delay=argocd_sync_delay,
                refresh_seconds=refresh_seconds,
                phase_timeout=phase_timeout,
                writes=writes,
                phases=phases,
                started=started,
                report=report,
            )
        finally:
            hub.close()
        finished = True
    finally:
        result.peak_rss_mb = _peak_rss(env) | result.peak_rss_mb
        pipeline.end_run(env, root, keep_logs=bool(result.notes) or not finished, report=report)
    return result


def _peak_rss(env: Environment) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, record in env.processes.items():
        if name in ("postgres", "kafka") or not process.is_alive(record):
            continue
        with contextlib.suppress(OSError):
            out[name] = round(vm_hwm_mb(Path(f"/proc/{record.pid}/status").read_text()), 1)
    out["bench (this process)"] = round(vm_hwm_mb(Path("/proc/self/status").read_text()), 1)
    return out


@dataclass
class _Sample:
    works: int = 0
    works_new: int = 0
    apps: int = 0
    ready: int = 0
    moved: int = 0
    no_revision: int = 0
    at: float = 0.0


class _Sampler:
    """Counts works in Maestro and hub Applications in a loop; prints every 5 s.

    Hub Applications come from a watch (``HubApps``). Works are counted by Maestro (one SQL
    count): every sample while deleting (the phase ends when none is left), every 5 s otherwise,
    for the progress line. Until session 9 they were listed, every 30 s: at 150,000 works a list
    took seconds of the server's time, from the system under test. Works at the new template are
    those the simulated agents applied (``AppliedRevisions``).
    """

    COUNT_EVERY = 5.0

    def __init__(
        self,
        client: MaestroClient,
        apps: HubApps,
        applied: AppliedRevisions,
        report: Report,
        read_cpu: Callable[[], Mapping[str, float]],
    ) -> None:
        self.client = client
        self.apps = apps
        self.applied = applied
        self.report = report
        self.latest = _Sample()
        self.target_revision = REVISIONS[0]
        self.phase = "setup"
        self._printed = 0.0
        self._works_counted = 0.0
        self._fresh = asyncio.Event()
        #: set during the create phase: CPU read at each tenth of the Applications Synced/Healthy
        self.progress: ProgressCpu | None = None
        self.read_cpu = read_cpu

    async def sample(self, *, works_too: bool = False) -> _Sample:
        at = time.monotonic()
        works, works_new = self.latest.works, self.latest.works_new
        where = queries.ResourceFilter(source=contract.MAESTRO_SOURCE)
        if works_too or self.phase == "delete" or at - self._works_counted >= self.COUNT_EVERY:
            works = await self.client.count(where)
            self._works_counted = at
        if self.phase == "update":
            works_new = self.applied.count(self.target_revision)
        counts = self.apps.counts()
        return _Sample(works, works_new, at=at, **counts)

    async def run(self) -> None:
        while True:
            try:
                self.latest = await self.sample()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a transient read failure: report it, sample again
                self.report(f"[bench]   (sample failed: {type(exc).__name__}: {exc})")
            if self.progress is not None and self.progress.due(self.latest.ready):
                self.progress.add(self.latest.ready, await asyncio.to_thread(self.read_cpu))
            self._fresh.set()
            now = time.monotonic()
            if now - self._printed >= 5:
                self._printed = now
                s = self.latest
                extra = f", at new revision {s.moved}" if self.apps.old_revisions is not None else ""
                new = f" (applied at the new template {s.works_new})" if self.phase == "update" else ""
                self.report(
                    f"[bench]   {self.phase}: works in Maestro {s.works}{new}, "
                    f"hub Applications {s.apps}, Synced+Healthy {s.ready}{extra}"
                )
            await asyncio.sleep(1)

    async def until(self, check: Callable[[_Sample], bool], since: float, timeout: float) -> float | None:
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


async def _measure(
    result: FleetResult,
    env: Environment,
    hub: Hub,
    hub_cluster: kube.Cluster,
    address: str,
    bootstrap: str,
    names: layout.Layout,
    root: Path,
    *,
    argocd_sync_delay: float,
    refresh_seconds: float,
    phase_timeout: float,
    writes: StatusWrites,
    phases: frozenset[str],
    started: float,
    report: Report,
) -> None:
    n, m = result.clusters, result.apps_per_cluster
    total = result.total
    gate = asyncio.Semaphore(64)
    async with MaestroClient(address, source="bench-observer") as client:
        report(f"[bench] registering {n} clusters in Maestro and on the hub ...")

        async def register(i: int) -> Any:
            async with gate:
                return await client.create_consumer(cluster_name(i))

        registered, _ = await asyncio.gather(
            asyncio.gather(*(register(i) for i in range(n))),
            asyncio.to_thread(hub.create_secrets, [cluster_name(i) for i in range(n)]),
        )
        applied = AppliedRevisions()
        fleet = SimulatedFleet(
            bootstrap, names, argocd_sync_delay=argocd_sync_delay, on_applied=applied.applied
        )
        await fleet.add(list(registered))
        fleet.start()
        refresher = asyncio.create_task(_refresh_forever(fleet, refresh_seconds, report))

        identity = await controllers_identity(hub_cluster, root)
        cli = str(Path(sys.executable).parent / "fleetplane")
        controllers = env.add_process(
            process.spawn(
                "controllers",
                [
                    cli,
                    "controllers",
                    "run",
                    "--kubeconfig",
                    str(identity),
                    "--maestro",
                    address,
                    "--inventory-namespace",
                    NAMESPACE,
                    "--write-rate",
                    str(writes.rate),
                    "--write-burst",
                    str(int(2 * writes.rate)),
                    "--write-concurrency",
                    str(writes.concurrency),
                    "--log-level",
                    "warning",
                ],
                root / "controllers.log",
            )
        )
        hub_apps = HubApps(KubeRest.from_kubeconfig(hub_cluster.kubeconfig))
        watching = asyncio.create_task(hub_apps.run())
        async with asyncio.timeout(60):
            await hub_apps.listed.wait()
        sampler = _Sampler(client, hub_apps, applied, report, read_cpu=lambda: _cpu_now(env))
        sampling = asyncio.create_task(sampler.run())
        result.setup_seconds = round(time.monotonic() - started, 1)
        writes_before = await asyncio.to_thread(hub.writes)
        writes_started = time.monotonic()
        try:
            # --- create ---
            report(f"[bench] applying {m} ApplicationSets x {n} clusters = {total} Applications ...")
            sampler.phase = "create"
            cpu_before = await asyncio.to_thread(_cpu_now, env)
            sampler.progress = progress = ProgressCpu(total, cpu_before)
            t0 = time.monotonic()
            await _apply_all(hub, [application_set(i) for i in range(m)])
            elapsed = await sampler.until(lambda s: s.apps >= total and s.ready >= total, t0, phase_timeout)
            result.create_seconds = _round(elapsed)
            sampler.progress = None
            cpu_after = await asyncio.to_thread(_cpu_now, env)
            _record_cpu(result, "create", cpu_before, cpu_after)
            progress.add(sampler.latest.ready, cpu_after)
            result.create_cpu_ms_by_progress = progress.per_application()
            sampler.latest = await sampler.sample(works_too=True)
            result.create_reached = sampler.reached()
            if elapsed is None:
                result.notes.append(f"create: not all Synced/Healthy within {phase_timeout:.0f}s")
            _check_alive(controllers, result, "create")
            result.skipped_phases = sorted(PHASES - phases)

            if "update" in phases:
                # --- update ---
                old_revisions = hub_apps.revisions()
                hub_apps.compare_with(old_revisions)
                if not any(old_revisions.values()):
                    result.notes.append("update: hub Applications carry no sync.revision; timed works only")
                report(f"[bench] changing targetRevision to {REVISIONS[1]} in all {m} ApplicationSets ...")
                sampler.phase = "update"
                sampler.target_revision = REVISIONS[1]
                cpu_before = await asyncio.to_thread(_cpu_now, env)
                t0 = time.monotonic()
                await _apply_all(hub, [application_set(i, REVISIONS[1]) for i in range(m)])
                works_done = await sampler.until(lambda s: s.works_new >= total, t0, phase_timeout)
                result.update_works_seconds = _round(works_done)
                if any(old_revisions.values()):
                    remaining = max(1.0, phase_timeout - (works_done or phase_timeout))
                    elapsed = await sampler.until(lambda s: s.moved >= total, t0, remaining)
                    result.update_seconds = _round(elapsed)
                _record_cpu(result, "update", cpu_before, await asyncio.to_thread(_cpu_now, env))
                result.update_reached = sampler.reached()
                if result.update_seconds is None:
                    result.notes.append("update: not every hub Application reached the new revision in time")
                _check_alive(controllers, result, "update")

            if "delete" in phases:
                # --- delete ---
                report(f"[bench] deleting all {m} ApplicationSets ...")
                sampler.phase = "delete"
                cpu_before = await asyncio.to_thread(_cpu_now, env)
                t0 = time.monotonic()
                await asyncio.gather(
                    *(
                        asyncio.to_thread(hub.delete_application_set, application_set(i)["metadata"]["name"])
                        for i in range(m)
                    )
                )
                elapsed = await sampler.until(lambda s: s.works == 0 and s.apps == 0, t0, phase_timeout)
                result.delete_seconds = _round(elapsed)
                _record_cpu(result, "delete", cpu_before, await asyncio.to_thread(_cpu_now, env))
                result.delete_reached = sampler.reached()
                if elapsed is None:
                    result.notes.append(
                        f"delete: works or hub Applications remained after {phase_timeout:.0f}s"
                    )
        finally:
            with contextlib.suppress(Exception):
                writes_after = await asyncio.to_thread(hub.writes)
                result.hub_writes_seconds = round(time.monotonic() - writes_started, 1)
                result.hub_writes_by_verb = {
                    v: writes_after.get(v, 0) - writes_before.get(v, 0) for v in sorted(writes_after)
                }
                result.hub_writes = sum(result.hub_writes_by_verb.values())
                result.hub_writes_per_s = round(result.hub_writes / max(result.hub_writes_seconds, 1e-9), 1)
            result.peak_rss_mb = _peak_rss(env)
            for task in (sampling, watching, refresher):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await hub_apps.rest.close()
            env.stop_process("controllers")
            await fleet.stop()


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _record_cpu(
    result: FleetResult, phase: str, before: Mapping[str, float], after: Mapping[str, float]
) -> None:
    result.cpu_seconds[phase], result.cpu_ms_per_application[phase] = phase_cpu(before, after, result.total)


def _check_alive(record: process.ProcessRecord, result: FleetResult, phase: str) -> None:
    if not process.is_alive(record):
        result.notes.append(f"{phase}: the controllers exited:\n{process.log_tail(record.log)}")


async def _apply_all(hub: Hub, bodies: list[dict[str, Any]]) -> None:
    gate = asyncio.Semaphore(8)

    async def one(body: dict[str, Any]) -> None:
        async with gate:
            await asyncio.to_thread(hub.apply_application_set, body)

    await asyncio.gather(*(one(b) for b in bodies))


async def _refresh_forever(fleet: SimulatedFleet, period: float, report: Report) -> None:
    """The simulated Argo CD fills status in lazily on read: re-read, so agents report it."""
    while True:
        await asyncio.sleep(period)
        try:
            await fleet.refresh()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            report(f"[bench]   (agent refresh failed: {type(exc).__name__}: {exc})")
