"""``fleetplane bench hub``: what one hub Application mirror costs the hub's API server, alone.

In ``bench fleet`` the hub kube-apiserver is the largest single user of CPU (2.6-2.9 ms per
Application of about 10). This benchmark isolates that share: it starts etcd and a hub
kube-apiserver configured as ``bench fleet`` does (Argo CD's CRDs; its Go runtime, feature gates
and admission settings), renders N mirrors with the propagation controller's own planning code
(the fleet benchmark's ApplicationSet over N inventory clusters) carrying the status the status
controller makes of a Synced/Healthy report, and times these writes, one mode after the other:

- ``mirror-apply``: each mirror created by server-side apply (``HubClient.apply_application``: not
  forced, ``fieldValidation=Ignore``, metadata-only reply), its status in the same write;
- ``mirror-reapply``: the same mirrors applied again at a new revision (a template change);
- ``mirror-apply-then-status``: each mirror applied without a status, then its status written by a
  JSON patch (``HubClient.replace_application_status``): a mirror created before its cluster reported;
- ``mirror-post``: each mirror created by POST (``HubClient.create_application``), its status in the
  same write;
- ``mirror-put``: those mirrors at a new revision, each read and replaced whole by PUT at the
  version read (``HubClient.replace_application``), keeping the stored status: the GET is counted;
- ``configmap-apply``: N ConfigMaps holding each mirror's JSON, by server-side apply: a built-in
  kind with the same bytes, the baseline the others are compared with (``vs_configmap``).

For each: writes/s, and CPU milliseconds per write of the API server, etcd and this process (the
client). Every write is made as the controllers' ServiceAccount, as in ``bench fleet``. Writes go
``concurrency`` at a time; the first ``warmup`` of each mode are not measured. The two mirror
applies share a hub; the POST and ConfigMap modes each start on a fresh one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from benchmarks import maestro_setup
from benchmarks.fleet import hub_cluster, workload
from benchmarks.progress import Progress
from controllers import contract, hub
from controllers.propagation import generators, inventory, plan
from controllers.status import aggregate
from kubeio import rest as kuberest
from localinfra import kube, process
from localinfra.environment import Environment

JsonObject = dict[str, Any]

BASELINE = "configmap-apply"
FIELD_MANAGER = "fleetplane-propagation"
_PROCESSES = {"hub": "hub/kube-apiserver", "etcd": "etcd"}


@dataclasses.dataclass
class ModeFigures:
    writes: int
    seconds: float
    writes_per_s: float
    #: CPU milliseconds per write: the hub API server, etcd, this process
    cpu_ms_per_write: dict[str, float]
    #: the hub API server's CPU per write over the baseline's (``configmap-apply``)
    vs_configmap: float | None = None


@dataclasses.dataclass
class HubResult:
    writes: int
    concurrency: int
    mirror_bytes: int
    #: the user the hub API server authenticated the writes as (the controllers' ServiceAccount)
    writes_as: str = ""
    modes: dict[str, ModeFigures] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def render_mirrors(count: int, *, revision: str = workload.REVISIONS[0]) -> list[JsonObject]:
    """``count`` hub mirrors as the propagation controller writes them in ``bench fleet`` (its
    ApplicationSet over ``count`` inventory clusters), each with the status of a Synced/Healthy
    report at ``revision``."""
    appset = workload.application_set(0, target_revision=revision)
    appset["metadata"]["uid"] = "00000000-0000-4000-8000-000000000000"
    secrets = [workload.cluster_secret(workload.cluster_name(i)) for i in range(count)]
    inputs = generators.GeneratorInputs(inventory=inventory.Inventory.from_secrets(secrets))
    generation = generators.generate(appset["spec"], inputs)
    desired = plan.plan_application_set(appset, generation.params, inputs.inventory)
    if desired.errors:
        raise RuntimeError(f"the benchmark's ApplicationSet does not plan: {desired.errors[0]}")
    report = _synced_report(revision)
    return [
        work.hub_mirror(aggregate.application_status(report, cluster=work.cluster)) for work in desired.works
    ]


def _synced_report(revision: str) -> JsonObject:
    """A work status as the agent reports a Synced/Healthy Application (its feedback values)."""

    def value(name: str, text: str) -> JsonObject:
        return {"name": name, "fieldValue": {"type": "String", "string": text}}

    return {
        "conditions": [{"type": "Applied", "status": "True"}, {"type": "Available", "status": "True"}],
        "resourceStatus": [
            {
                "resourceMeta": {"kind": "Application", "ordinal": 0},
                "statusFeedback": {
                    "values": [
                        value(contract.FEEDBACK_SYNC_STATUS, "Synced"),
                        value(contract.FEEDBACK_HEALTH_STATUS, "Healthy"),
                        value(contract.FEEDBACK_SYNC_REVISION, hashlib.sha1(revision.encode()).hexdigest()),
                    ]
                },
            }
        ],
    }


def configmap_of(mirror: Mapping[str, Any]) -> JsonObject:
    """A ConfigMap carrying the mirror's JSON: the same bytes in a built-in kind."""
    meta = mirror["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": meta.get("labels") or {},
        },
        "data": {"application.json": orjson.dumps(mirror).decode()},
    }


#: modes run one after the other on one fresh hub (a re-apply needs the applied mirrors); each
#: group has its own, so that the objects one group stored do not weigh on the next (at 150,000
#: writes a plain create on a hub already holding 300,000 mirrors cost twice what it costs alone)
GROUPS = (
    ("mirror-apply", "mirror-reapply"),
    ("mirror-post", "mirror-put"),
    ("mirror-apply-then-status",),
    (BASELINE,),
)


async def run(writes: int, *, progress: Progress, concurrency: int = 48, warmup: int = 200) -> HubResult:
    mirrors = render_mirrors(warmup + writes)
    result = HubResult(writes, concurrency, len(orjson.dumps(mirrors[0])))
    bodies: dict[str, Callable[[], Sequence[JsonObject]]] = {
        "mirror-apply": lambda: mirrors,
        "mirror-reapply": lambda: render_mirrors(warmup + writes, revision=workload.REVISIONS[1]),
        "mirror-apply-then-status": lambda: mirrors,
        "mirror-post": lambda: mirrors,
        "mirror-put": lambda: render_mirrors(warmup + writes, revision=workload.REVISIONS[1]),
        BASELINE: lambda: [configmap_of(m) for m in mirrors],
    }
    for group in GROUPS:
        root = Path(tempfile.mkdtemp(prefix="fleetplane-bench-hub-"))
        env = Environment(root / "env")
        finished = False
        try:
            progress("[bench] starting etcd and a hub kube-apiserver (as bench fleet does) ...")
            cluster = await hub_cluster.start_hub(env)
            writers = _Writers(await hub_cluster.controllers_identity(cluster, root), concurrency)
            try:
                result.writes_as = await writers.user()
                owner = await _owner_uid(cluster)
                for mode in group:
                    todo = [_owned_by(body, owner) for body in bodies[mode]()]
                    progress(f"[bench] {mode}: {len(todo):,} writes, {concurrency} at a time ...")
                    progress.step(f"{mode}: writes", len(todo))
                    figures = result.modes[mode] = await _timed(
                        env, writers.of(mode), todo, warmup, concurrency, progress
                    )
                    progress(
                        f"[bench]   {figures.writes_per_s:,.0f} writes/s, hub API server "
                        f"{figures.cpu_ms_per_write['hub']:.2f} ms CPU per write"
                    )
            finally:
                await writers.close()
            finished = True
        finally:
            maestro_setup.end_run(env, root, keep_logs=not finished, report=progress)
    baseline = result.modes[BASELINE].cpu_ms_per_write["hub"]
    for figures in result.modes.values():
        figures.vs_configmap = round(figures.cpu_ms_per_write["hub"] / baseline, 2) if baseline else None
    return result


async def _owner_uid(cluster: kube.Cluster) -> str:
    """The uid of the mirrors' ApplicationSet, created on this hub: a mirror whose owner does not
    exist would be deleted by the garbage collector while the modes run."""
    rest = kuberest.KubeRest.from_kubeconfig(cluster.kubeconfig)
    try:
        appset = workload.application_set(0)
        group, version = workload.ARGOCD
        path = f"/apis/{group}/{version}/namespaces/{appset['metadata']['namespace']}/applicationsets"
        created = await rest.request("POST", path, body=appset)
        return str(created["metadata"]["uid"])
    finally:
        await rest.close()


def _owned_by(body: JsonObject, uid: str) -> JsonObject:
    """A mirror pointing at the ApplicationSet of ``uid`` (a ConfigMap is left as it is)."""
    meta = body["metadata"]
    if not meta.get("ownerReferences"):
        return body
    owners = [{**ref, "uid": uid} for ref in meta["ownerReferences"]]
    return {**body, "metadata": {**meta, "ownerReferences": owners}}


class _Writers:
    """One write per mode: the controllers' own client for the mirrors they apply, a plain one else."""

    def __init__(self, kubeconfig: Path, concurrency: int) -> None:
        self._hub = hub.HubClient(kubeconfig, max_connections=concurrency)
        self._rest = kuberest.KubeRest.from_kubeconfig(
            kubeconfig, retry=kuberest.RetrySettings(budget=20.0, max_connections=concurrency)
        )

    def of(self, mode: str) -> Callable[[JsonObject], Awaitable[object]]:
        return {
            "mirror-apply": _apply(self._hub, force=False),
            "mirror-reapply": _apply(self._hub, force=True),
            "mirror-apply-then-status": _apply_then_status(self._hub),
            "mirror-post": _post(self._hub),
            "mirror-put": _put(self._hub),
            BASELINE: _apply_configmap(self._rest),
        }[mode]

    async def user(self) -> str:
        """Who the hub says the writers are: authentication differs in cost per identity."""
        review = await self._rest.request(
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
        return str(review["status"]["userInfo"]["username"])

    async def close(self) -> None:
        await self._hub.close()
        await self._rest.close()


def _apply(client: hub.HubClient, *, force: bool) -> Callable[[JsonObject], Awaitable[object]]:
    """As the controllers apply a mirror: not forced when they create it, forced when they update it."""

    async def write(mirror: JsonObject) -> object:
        return await client.apply_application(mirror, field_manager=FIELD_MANAGER, force=force)

    return write


def _apply_then_status(client: hub.HubClient) -> Callable[[JsonObject], Awaitable[object]]:
    async def write(mirror: JsonObject) -> object:
        meta = mirror["metadata"]
        await client.apply_application(
            {k: v for k, v in mirror.items() if k != "status"}, field_manager=FIELD_MANAGER, force=False
        )
        await client.replace_application_status(meta["namespace"], meta["name"], mirror["status"])
        return None

    return write


def _post(client: hub.HubClient) -> Callable[[JsonObject], Awaitable[object]]:
    async def write(mirror: JsonObject) -> object:
        return await client.create_application(mirror, field_manager=FIELD_MANAGER)

    return write


def _put(client: hub.HubClient) -> Callable[[JsonObject], Awaitable[object]]:
    async def write(mirror: JsonObject) -> object:
        meta = mirror["metadata"]
        stored = await client.get_application(meta["namespace"], meta["name"])
        assert stored is not None, f"{meta['name']} was created by the mode before"
        replaced = {
            **mirror,
            "metadata": {**meta, "resourceVersion": stored["metadata"]["resourceVersion"]},
            "status": stored.get("status") or {},
        }
        return await client.replace_application(replaced, field_manager=FIELD_MANAGER)

    return write


def _apply_configmap(rest: kuberest.KubeRest) -> Callable[[JsonObject], Awaitable[object]]:
    async def write(configmap: JsonObject) -> object:
        meta = configmap["metadata"]
        return await rest.request(
            "PATCH",
            f"/api/v1/namespaces/{meta['namespace']}/configmaps/{meta['name']}",
            query=[*hub.WRITE_QUERY, ("fieldManager", FIELD_MANAGER), ("force", "false")],
            body=configmap,
            content_type=kuberest.APPLY_PATCH,
            accept=kuberest.METADATA,
        )

    return write


async def _timed(
    env: Environment,
    write: Callable[[JsonObject], Awaitable[object]],
    bodies: Sequence[JsonObject],
    warmup: int,
    concurrency: int,
    progress: Progress,
) -> ModeFigures:
    gate = asyncio.Semaphore(concurrency)
    written = 0

    async def one(body: JsonObject) -> None:
        nonlocal written
        async with gate:
            await write(body)
        written += 1
        progress.advance(written)

    await asyncio.gather(*(one(b) for b in bodies[:warmup]))
    before, own_before, started = _cpu(env), _own_cpu(), time.monotonic()
    await asyncio.gather(*(one(b) for b in bodies[warmup:]))
    seconds = time.monotonic() - started
    after, own_after = _cpu(env), _own_cpu()
    measured = max(len(bodies) - warmup, 1)
    per_write = {key: round(1000 * (after[key] - before[key]) / measured, 3) for key in _PROCESSES}
    per_write["client"] = round(1000 * (own_after - own_before) / measured, 3)
    return ModeFigures(measured, round(seconds, 2), round(measured / seconds, 1), per_write)


def _cpu(env: Environment) -> dict[str, float]:
    used = process.cpu_seconds(env.processes)
    return {key: used[name] for key, name in _PROCESSES.items()}


def _own_cpu() -> float:
    own = os.times()
    return own.user + own.system
