"""``bench fleet --compare-argocd-appset``: Argo CD's own ApplicationSet controller creating the
fleet benchmark's Applications on the same hub, before fleetplane's controllers run.

For each of its settings (Argo CD's defaults, then a client rate and concurrency raised for
throughput), the controller (with the repo-server and Redis it needs) is started on the hub that
holds the N inventory Secrets, the same M ApplicationSets are applied, and the time is taken until
the hub holds N x M Applications; the CPU of every process of the run in that time is read per
Application. Argo CD writes each Application once, by POST, with no status: it delivers nothing,
where fleetplane's create phase ends when every Application was delivered and its Synced/Healthy
status is on the hub. Then the controller is stopped and its ApplicationSets and Applications are
deleted, so that the hub is as before for the next settings and for fleetplane.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import Any

from benchmarks.fleet.cpu import cpu_now, phase_cpu
from benchmarks.fleet.hub_cluster import Hub
from benchmarks.fleet.workload import ARGOCD, NAMESPACE, application_set
from benchmarks.progress import Progress
from kubeio import rest as kuberest
from kubeio.rest import KubeRest
from localinfra import argocd, kube, kubectl
from localinfra.environment import Environment

#: each run's name and its controller's settings (None: Argo CD's defaults, QPS 50, burst 100,
#: 10 concurrent reconciliations)
SETTINGS: dict[str, argocd.AppSetTuning | None] = {
    "argocd-defaults": None,
    "argocd-qps2000-burst4000-50": argocd.AppSetTuning(2000, 4000, 50),
}
_APPLICATIONS = f"/apis/{ARGOCD[0]}/{ARGOCD[1]}/namespaces/{NAMESPACE}/applications"
_APPLICATION_SETS = f"/apis/{ARGOCD[0]}/{ARGOCD[1]}/namespaces/{NAMESPACE}/applicationsets"


@dataclasses.dataclass
class ArgoRun:
    #: the controller's settings as given to it
    settings: dict[str, Any]
    seconds: float | None
    applications_per_s: float | None
    cpu_seconds: dict[str, float]
    cpu_ms_per_application: dict[str, float]
    #: the hub API server's writes in that time, by operation (Argo CD creates by POST)
    hub_writes_by_verb: dict[str, int]


async def measure(
    env: Environment,
    cluster: kube.Cluster,
    hub: Hub,
    appsets: int,
    total: int,
    timeout: float,
    progress: Progress,
) -> dict[str, dict[str, Any]]:
    """Each of ``SETTINGS`` in turn; the hub is left without Applications or ApplicationSets."""
    await asyncio.to_thread(kubectl.apply, cluster.kubeconfig, argocd.config_objects(NAMESPACE))
    rest = KubeRest.from_kubeconfig(cluster.kubeconfig)
    out: dict[str, dict[str, Any]] = {}
    try:
        for label, tuning in SETTINGS.items():
            progress(f"[bench] Argo CD's ApplicationSet controller ({label}): {total:,} Applications ...")
            run = await _one(env, cluster, hub, rest, tuning, appsets, total, timeout, progress)
            out[label] = dataclasses.asdict(run)
            if run.seconds is not None:
                each = run.cpu_ms_per_application["all"]
                progress(f"[bench]   {total:,} in {run.seconds:.1f} s, {each:.2f} ms CPU each")
            else:
                progress(f"[bench]   not all {total:,} within {timeout:.0f} s")
    finally:
        await rest.close()
    return out


async def _one(
    env: Environment,
    cluster: kube.Cluster,
    hub: Hub,
    rest: KubeRest,
    tuning: argocd.AppSetTuning | None,
    appsets: int,
    total: int,
    timeout: float,
    progress: Progress,
) -> ArgoRun:
    await asyncio.to_thread(
        argocd.start_applicationset_controller,
        env,
        cluster,
        applicationset_namespaces=NAMESPACE,
        tuning=tuning,
    )
    names = [n for n in env.processes if n.startswith(f"{cluster.name}/argocd-")]
    try:
        writes_before = await asyncio.to_thread(hub.writes)
        cpu_before = await asyncio.to_thread(cpu_now, env)
        t0 = time.monotonic()
        await asyncio.gather(
            *(asyncio.to_thread(hub.apply_application_set, application_set(i)) for i in range(appsets))
        )
        seconds = await _until(rest, _APPLICATIONS, lambda n: n >= total, t0, timeout)
        cpu_after = await asyncio.to_thread(cpu_now, env)
        writes_after = await asyncio.to_thread(hub.writes)
    finally:
        for name in names:
            env.stop_process(name)
    cpu_seconds, per_app = phase_cpu(cpu_before, cpu_after, total)
    progress("[bench]   deleting its ApplicationSets and Applications ...")
    await rest.request("DELETE", _APPLICATION_SETS)
    await _drop_finalizers(rest)
    await rest.request("DELETE", _APPLICATIONS)
    for path in (_APPLICATION_SETS, _APPLICATIONS):
        if await _until(rest, path, lambda n: n == 0, time.monotonic(), timeout) is None:
            raise RuntimeError(f"the hub still holds objects of {path} after {timeout:.0f} s")
    return ArgoRun(
        _described(tuning),
        None if seconds is None else round(seconds, 1),
        None if seconds is None else round(total / seconds, 1),
        cpu_seconds,
        per_app,
        {verb: writes_after.get(verb, 0) - writes_before.get(verb, 0) for verb in sorted(writes_after)},
    )


async def _drop_finalizers(rest: KubeRest) -> None:
    """Argo CD puts its resources finalizer on each Application it generates (its application
    controller, which would delete what it deployed, does not run here): take it off."""
    stored, _ = await rest.list_all(_APPLICATIONS, page=500, accept=kuberest.METADATA_LIST)
    gate = asyncio.Semaphore(32)

    async def drop(name: str) -> None:
        async with gate:
            await rest.request(
                "PATCH",
                f"{_APPLICATIONS}/{name}",
                body={"metadata": {"finalizers": None}},
                content_type=kuberest.MERGE_PATCH,
                accept=kuberest.METADATA,
            )

    await asyncio.gather(
        *(drop(app["metadata"]["name"]) for app in stored if app["metadata"].get("finalizers"))
    )


def _described(tuning: argocd.AppSetTuning | None) -> dict[str, Any]:
    chosen = tuning or argocd.AppSetTuning(50, 100, 10)
    return {**dataclasses.asdict(chosen), "defaults": tuning is None}


async def _until(
    rest: KubeRest, path: str, done: Callable[[int], bool], t0: float, timeout: float
) -> float | None:
    """Seconds since ``t0`` until the count of objects at ``path`` satisfies ``done``; None after
    ``timeout``. Counted from a one-item page (its remaining count), not a list of them all."""
    while True:
        if done(await _count(rest, path)):
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            return None
        await asyncio.sleep(0.5)


async def _count(rest: KubeRest, path: str) -> int:
    page = await rest.request("GET", path, query=[("limit", "1")])
    items = len(page.get("items") or [])
    remaining = (page.get("metadata") or {}).get("remainingItemCount")
    if remaining is not None or not (page.get("metadata") or {}).get("continue"):
        return items + int(remaining or 0)
    return len((await rest.request("GET", path)).get("items") or [])
