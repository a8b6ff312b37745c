"""``fleetplane bench provision``: N ClusterClaims applied at once, until every cluster is Ready.

Starts, in a temporary environment: etcd, a management kube-apiserver, PostgreSQL, Kafka, a Maestro
server and ``fleetplane provisioner run`` (the local provider), installs the worker-cluster
composition, applies N claims in one ``kubectl apply``, and reports the time until all are Ready
(each with its own kube-apiserver, Argo CD and Maestro agent), the memory each cluster's processes
hold, and the time until deleting all claims leaves nothing behind. The clusters run with a worker
tuning (``localinfra.tuning``); ``compare`` runs untuned then tuned clusters in one report, on one
hub: between the two, only the provisioner is started again, with the other tuning.

Stopped (Ctrl-C, SIGTERM), a run stops the provisioner first (else it would start again the
clusters' processes stopped under it), then its clusters and everything else, and removes its
temporary folder; when it fails, the folder's logs are kept and their place printed.

Memory is read twice: the resident set (RSS), and the proportional set size (PSS), which counts a
page shared by several processes (the same binary's code in twenty API servers) once, divided among
them: what a cluster more costs the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from benchmarks import maestro_setup
from benchmarks.proc_sample import available_mb, pss_mb, rss_mb
from benchmarks.progress import Progress
from kubeio import objects
from kubeio.errors import NotFoundError
from kubeio.rest import KubeRest
from localinfra import etcd, gitrepo, kafka, kube, kubectl, platform, postgres, process, tuning
from localinfra.environment import Environment
from provisioner import catalog, operator
from trust.identity import Identity

NAMESPACE = "bench"
#: how often the benchmark counts claims (each count lists them all)
POLL_SECONDS = 2.0
#: claims deleted at once
DELETE_CONCURRENCY = 32
CLAIMS = "/apis/platform.fleetplane.io/v1alpha1/namespaces/bench/clusterclaims"
#: the machine's available memory (MB) below which a run stops waiting and deletes its clusters:
#: on a shared machine other jobs keep what they need, and the kernel's OOM killer stays away
MIN_AVAILABLE_MB = 2048.0

P = ParamSpec("P")
T = TypeVar("T")


@dataclasses.dataclass
class ProvisionResult:
    clusters: int
    #: the worker tuning the clusters ran with (``localinfra.tuning``)
    tuning: str = tuning.TUNED.name
    #: Maestro served plaintext with no authorization (--insecure)
    insecure: bool = False
    seconds_to_all_ready: float | None = None
    first_ready_seconds: float | None = None
    seconds_to_all_deleted: float | None = None
    rss_mb_per_cluster: float | None = None
    rss_mb_per_component: dict[str, float] = dataclasses.field(default_factory=dict)
    pss_mb_per_cluster: float | None = None
    pss_mb_per_component: dict[str, float] = dataclasses.field(default_factory=dict)
    #: every cluster's processes together (PSS)
    pss_mb_all_clusters: float | None = None
    provisioner_rss_mb: float | None = None
    #: the machine's, once all were Ready: what the kernel could still give (MemAvailable) and the
    #: 1-minute load average (other jobs' included)
    machine_available_mb: float | None = None
    load_average: float | None = None
    notes: list[str] = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class ComparedTuning:
    """Untuned clusters, then tuned ones, on the same hub, in one report."""

    untuned: ProvisionResult
    tuned: ProvisionResult

    def as_dict(self) -> dict[str, Any]:
        ratio = None
        if self.untuned.pss_mb_per_cluster and self.tuned.pss_mb_per_cluster:
            ratio = round(self.tuned.pss_mb_per_cluster / self.untuned.pss_mb_per_cluster, 2)
        return {
            "untuned": self.untuned.as_dict(),
            "tuned": self.tuned.as_dict(),
            "tuned_vs_untuned_pss_per_cluster": ratio,
        }


def claim(index: int, repo: str, provider: str = "local") -> dict[str, Any]:
    return {
        "apiVersion": "platform.fleetplane.io/v1alpha1",
        "kind": "ClusterClaim",
        "metadata": {"name": f"bench-{index:03d}", "namespace": NAMESPACE},
        "spec": {
            "parameters": {
                "provider": provider,
                "labels": {"bench": "provision"},
                "apps": {"repoURL": repo, "path": "apps/configmap1"},
            }
        },
    }


@dataclasses.dataclass
class Memory:
    """Mean MB per cluster and per component (kube-apiserver, argocd-repo-server, ...), and the
    sum over every cluster, of one measure (RSS or PSS)."""

    per_cluster: float
    per_component: dict[str, float]
    total: float


def memory(clusters: Environment, measure: Callable[[int], float] = rss_mb) -> Memory:
    per_cluster: dict[str, float] = {}
    per_component: dict[str, list[float]] = {}
    for name, record in clusters.processes.items():
        if not process.is_alive(record) or "/" not in name:
            continue
        cluster, component = name.split("/", 1)
        mb = measure(record.pid)
        per_cluster[cluster] = per_cluster.get(cluster, 0.0) + mb
        per_component.setdefault(component, []).append(mb)
    total = sum(per_cluster.values())
    mean = total / len(per_cluster) if per_cluster else 0.0
    components = {k: round(sum(v) / len(v), 1) for k, v in sorted(per_component.items())}
    return Memory(round(mean, 1), components, round(total, 1))


#: the API server's table of a kind (its printer columns), not its objects: counting a thousand
#: claims each second must not cost the API server the whole objects' JSON each time
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


async def table(rest: KubeRest, path: str) -> list[dict[str, Any]]:
    """Each object's printer columns (``NAME``, ``READY`` ...) by column name."""
    reply = await rest.request("GET", path, accept=TABLE)
    names = [str(c.get("name", "")).upper() for c in reply.get("columnDefinitions") or []]
    return [dict(zip(names, row.get("cells") or [], strict=False)) for row in reply.get("rows") or []]


async def _ready_count(rest: KubeRest) -> tuple[int, int]:
    rows = await table(rest, CLAIMS)
    return sum(row.get("READY") == "True" for row in rows), len(rows)


@dataclasses.dataclass
class Hub:
    """What a provisioning benchmark runs against: the management cluster, Maestro and the
    provisioner, in the temporary environment ``env`` under ``root``."""

    env: Environment
    root: Path
    hub: kube.Cluster
    rest: KubeRest
    provisioner: process.ProcessRecord
    maestro: str
    security: maestro_setup.Security
    #: ``fleetplane provisioner run`` and its options but those of ``restart_provisioner``
    provisioner_base: list[str]

    async def restart_provisioner(self, more_args: Sequence[str]) -> None:
        """Stop the provisioner and start it again with ``more_args`` instead of the first
        ones; until it serves claims again."""
        await asyncio.to_thread(self.env.stop_process, PROVISIONER)
        self.provisioner = await _start_provisioner(
            self.env, self.rest, self.root, self.provisioner_base, more_args
        )


#: the provisioner's name among the environment's processes
PROVISIONER = "provisioner"


async def _start_provisioner(
    env: Environment, rest: KubeRest, root: Path, base: Sequence[str], more_args: Sequence[str]
) -> process.ProcessRecord:
    provisioner = platform.launch(env, PROVISIONER, [*base, *more_args], root / "provisioner.log")
    await _until_served(rest, provisioner)
    return provisioner


@contextlib.asynccontextmanager
async def hub_platform(
    progress: Progress, *, insecure: bool, provisioner_args: Sequence[str]
) -> AsyncIterator[Hub]:
    """etcd, a management kube-apiserver, PostgreSQL, Kafka, a Maestro server and ``fleetplane
    provisioner run`` (with ``provisioner_args``), the worker-cluster composition installed and the
    claims' namespace made; all stopped and the folder removed afterwards (its logs kept when the
    block fails)."""
    root = Path(tempfile.mkdtemp(prefix="fleetplane-bench-provision-"))
    env = Environment(root / "env")
    failed = False
    try:
        progress("[bench] starting etcd, the management kube-apiserver, PostgreSQL, Kafka, Maestro ...")
        etcd_url = await starting(etcd.start, env)
        hub = await starting(kube.start, env, "hub", etcd_url)
        pg = await starting(postgres.start, env)
        kf = await starting(kafka.start, env, heap="1g")
        # The provisioner's agents get their identities from the same CA (the environment's).
        security = maestro_setup.Security(env, insecure=insecure)
        _server, address, names = await maestro_setup.start_server(env, pg, kf, root, security)
        rest = KubeRest.from_kubeconfig(hub.kubeconfig)
        try:
            await operator.install(objects.Objects(rest), catalog.COMPOSITIONS_DIR / "worker-cluster")
            base = [
                "provisioner",
                "run",
                "--kubeconfig",
                str(hub.kubeconfig),
                "--maestro",
                address,
                "--kafka",
                kf.bootstrap,
                "--topic-prefix",
                names.prefix,
                # the local provider; its environment's CA issues the clusters' identities
                "--local-env",
                str(env.root),
                *security.client_args(Identity.admin(operator.MAESTRO_SOURCE)),
            ]
            provisioner = await _start_provisioner(env, rest, root, base, provisioner_args)
            namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
            await asyncio.to_thread(kubectl.apply, hub.kubeconfig, [namespace])
            yield Hub(env, root, hub, rest, provisioner, address, security, base)
        finally:
            await rest.close()
    except Exception:
        failed = True
        raise
    finally:
        _stop(env, root, failed, progress)


async def starting(start: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``start`` (a component's start, which waits for it to serve) in a thread. Cancelled
    meanwhile (Ctrl-C), it lets ``start`` end before passing the cancellation on: what it launched
    is then recorded in the environment and stopped with the rest, not launched after the rest
    was stopped and left running."""
    started = asyncio.ensure_future(asyncio.to_thread(start, *args, **kwargs))
    try:
        return await asyncio.shield(started)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await started
        raise


def _stop(env: Environment, root: Path, failed: bool, progress: Progress) -> None:
    """Stop the provisioner, then its clusters (its environment's child) and the rest; remove the
    run's folder, or keep its logs when it failed. Running still, the provisioner would start again
    the clusters' processes ``down`` stops, and they would outlive the run."""
    try:
        # the output may be gone (Ctrl-C stops a `| tee` too): what was started goes all the same
        with contextlib.suppress(OSError):
            progress("[bench] stopping what the run started ...")
        env.stop_process(PROVISIONER)
    finally:
        maestro_setup.end_run(env, root, keep_logs=failed, report=progress)


async def run(
    clusters: int,
    *,
    progress: Progress,
    timeout: float = 1800.0,
    insecure: bool = False,
    worker_tuning: tuning.WorkerTuning = tuning.TUNED,
    min_available_mb: float = MIN_AVAILABLE_MB,
) -> ProvisionResult:
    async with hub_platform(progress, insecure=insecure, provisioner_args=_tuned(worker_tuning)) as bench:
        return await measure(bench, clusters, progress, timeout, insecure, worker_tuning, min_available_mb)


def _tuned(worker_tuning: tuning.WorkerTuning) -> list[str]:
    return ["--local-tuning", worker_tuning.name]


async def measure(
    bench: Hub,
    clusters: int,
    progress: Progress,
    timeout: float,
    insecure: bool,
    worker_tuning: tuning.WorkerTuning,
    min_available_mb: float,
) -> ProvisionResult:
    """``clusters`` claims applied at once on ``bench`` (its provisioner started with
    ``worker_tuning``) until all are Ready; their memory; all deleted."""
    result = ProvisionResult(clusters, worker_tuning.name, insecure=insecure)
    repo = await asyncio.to_thread(gitrepo.demo_apps_repo, bench.root / f"apps-{worker_tuning.name}")
    progress(f"[bench] applying {clusters} ClusterClaims at once ({worker_tuning.name}) ...")
    started = time.monotonic()
    await asyncio.to_thread(kubectl.apply, bench.hub.kubeconfig, [claim(i, repo) for i in range(clusters)])
    waited = await wait_ready(bench, clusters, progress, started, timeout, min_available_mb)
    result.seconds_to_all_ready, result.first_ready_seconds = waited.seconds, waited.first
    if waited.problem:
        result.notes.append(waited.problem)
        # the claims go all the same: what was started must not stay behind holding memory
        await delete_all(bench, clusters, progress, timeout)
        return result
    provisioned = bench.env.child("provisioned")
    rss, pss = memory(provisioned), memory(provisioned, pss_mb)
    result.rss_mb_per_cluster, result.rss_mb_per_component = rss.per_cluster, rss.per_component
    result.pss_mb_per_cluster, result.pss_mb_per_component = pss.per_cluster, pss.per_component
    result.pss_mb_all_clusters = pss.total
    result.provisioner_rss_mb = round(rss_mb(bench.provisioner.pid), 1)
    result.machine_available_mb = available_mb()
    result.load_average = round(os.getloadavg()[0], 1)
    progress(f"[bench] deleting the {clusters} claims ...")
    deleted = await delete_all(bench, clusters, progress, timeout)
    result.seconds_to_all_deleted = deleted.seconds
    if deleted.problem:
        result.notes.append(deleted.problem)
    return result


async def compare(
    untuned: int,
    tuned: int,
    *,
    progress: Progress,
    timeout: float = 1800.0,
    insecure: bool = False,
    min_available_mb: float = MIN_AVAILABLE_MB,
) -> ComparedTuning:
    """``untuned`` clusters with the components' defaults, then ``tuned`` with ``tuning.TUNED``, on
    one hub: the provisioner alone is started again between the two (the clusters' processes get
    their tuning from it)."""
    limits = (timeout, insecure)
    first_args = _tuned(tuning.UNTUNED)
    async with hub_platform(progress, insecure=insecure, provisioner_args=first_args) as bench:
        first = await measure(bench, untuned, progress, *limits, tuning.UNTUNED, min_available_mb)
        progress(f"[bench] starting the provisioner again, with the {tuning.TUNED.name} tuning ...")
        await bench.restart_provisioner(_tuned(tuning.TUNED))
        second = await measure(bench, tuned, progress, *limits, tuning.TUNED, min_available_mb)
    return ComparedTuning(first, second)


@dataclasses.dataclass
class Waited:
    seconds: float | None = None
    first: float | None = None
    problem: str = ""


async def wait_ready(
    bench: Hub,
    clusters: int,
    progress: Progress,
    started: float,
    timeout: float,
    min_available_mb: float = 0.0,
) -> Waited:
    """Until every claim is Ready (or the provisioner died, or ``timeout``, or the machine's
    available memory fell below ``min_available_mb``), from ``started``."""
    progress.step("clusters Ready", clusters)
    waited, last = Waited(), -1
    while True:
        ready, _ = await _ready_count(bench.rest)
        progress.advance(ready)
        elapsed = time.monotonic() - started
        if ready and waited.first is None:
            waited.first = round(elapsed, 1)
        if ready != last:
            progress(f"[bench] {elapsed:6.1f}s  {ready}/{clusters} clusters Ready")
            last = ready
        if ready == clusters:
            waited.seconds = round(elapsed, 1)
            return waited
        if not process.is_alive(bench.provisioner):
            waited.problem = f"the provisioner died: {process.log_tail(bench.provisioner.log, 10)}"
            return waited
        if elapsed > timeout:
            waited.problem = f"{ready}/{clusters} Ready after {timeout:.0f}s"
            return waited
        if (available := available_mb()) < min_available_mb:
            waited.problem = (
                f"stopped at {ready}/{clusters} Ready after {elapsed:.0f}s: the machine had "
                f"{available:.0f} MB available, under --min-available-mb {min_available_mb:.0f}; "
                "run fewer clusters"
            )
            return waited
        await asyncio.sleep(POLL_SECONDS)


async def delete_all(bench: Hub, clusters: int, progress: Progress, timeout: float) -> Waited:
    """Delete every claim at once; until none is left."""
    progress.step("claims deleted", clusters)
    started = time.monotonic()
    # Claims deleted DELETE_CONCURRENCY at a time: kubectl deletes them one at a time, and a single
    # delete-collection of a thousand outlasts the client's timeout on a loaded API server.
    gate = asyncio.Semaphore(DELETE_CONCURRENCY)

    async def delete(name: str) -> None:
        async with gate:
            with contextlib.suppress(NotFoundError):
                await bench.rest.request("DELETE", f"{CLAIMS}/{name}")

    await asyncio.gather(*(delete(str(row["NAME"])) for row in await table(bench.rest, CLAIMS)))
    while True:
        _, left = await _ready_count(bench.rest)
        progress.advance(clusters - left)
        elapsed = time.monotonic() - started
        if left == 0:
            return Waited(seconds=round(elapsed, 1))
        if elapsed > timeout:
            return Waited(problem=f"{left} claims left after {timeout:.0f}s")
        await asyncio.sleep(POLL_SECONDS)


async def _until_served(rest: KubeRest, provisioner: process.ProcessRecord) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            await rest.request("GET", CLAIMS)
            return
        if not process.is_alive(provisioner):
            raise RuntimeError(f"the provisioner exited: {process.log_tail(provisioner.log, 20)}")
        await asyncio.sleep(1.0)
    raise TimeoutError("the ClusterClaim kind was not served within 120s")
