"""kill -9 of the hub controllers' leader during a rollout of Applications, on the chaos suite's
Maestro and its real agents.

Two ``fleetplane controllers run`` replicas (leader election on a Lease of their own, default
timings: 15 s lease) on the session's hub, sending works to the chaos pipeline's Maestro, whose
consumers are the session's worker clusters, each with its real agent. An inventory Secret per
worker cluster and ``APPSETS`` pulled ApplicationSets (a clusters generator picking both) make two
Applications each. Once a third of their works are in Maestro, every third ApplicationSet's
template is changed; then the leader is killed -9 and every fifth ApplicationSet is deleted while
nobody leads. The standby takes the Lease (the seconds from the kill are measured and printed) and
serves what changed. In the end the outcome is exact: every Application once on its worker at its
last template, its hub mirror once with the status the worker's Application has (whatever that
cluster's Argo CD made of it, or nothing where no Argo CD runs), the deleted ApplicationSets gone
with their Applications on the hub and the workers and their works in Maestro, one work per
(ApplicationSet, cluster), no status sequence id sent twice for a work, the outbox empty.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from controllers import contract
from controllers.propagation import ownership
from kubeio.errors import NotFoundError
from kubeio.rest import MERGE_PATCH, KubeRest
from localinfra import argocd, kube, kubectl, platform
from maestro.api import queries
from maestro.client import MaestroClient
from tests.chaos.environment import Chaos, LeaderReplica, until
from tests.integration.maestro.failures import FLEETPLANE
from trust import files
from trust.identity import Identity

pytestmark = pytest.mark.chaos

#: ApplicationSets, each making an Application on both worker clusters
APPSETS = 60
ARGOCD = "/apis/argoproj.io/v1alpha1/namespaces"
INVENTORY = platform.INVENTORY_NAMESPACE
#: where the controllers write the Applications on the workers (their default)
WORKER_NAMESPACE = "argocd"
#: what the Applications would sync (nothing fetches it)
REPO = "https://git.invalid/chaos/apps.git"
UNKNOWN = "Unknown"


def changed(i: int) -> bool:
    return i % 3 == 0 and not deleted(i)


def deleted(i: int) -> bool:
    return i % 5 == 4


def inventory_secret(cluster: str, run: str) -> dict[str, Any]:
    fields = {"name": cluster, "server": f"https://{cluster}.invalid:6443"}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": f"chaos-{run}-{cluster}",
            "namespace": INVENTORY,
            "labels": {"argocd.argoproj.io/secret-type": "cluster", "chaos-run": run},
        },
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in fields.items()},
    }


def application_set(name: str, run: str, path: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {
            "name": name,
            "namespace": INVENTORY,
            "labels": {contract.PULL_LABEL: contract.PULL_LABEL_VALUE},
        },
        "spec": {
            "generators": [{"clusters": {"selector": {"matchLabels": {"chaos-run": run}}}}],
            # Else each Application carries Argo CD's resources finalizer, which only a worker's
            # running Argo CD takes off; these deploy nothing, so there is nothing to cascade.
            "syncPolicy": {"preserveResourcesOnDeletion": True},
            "template": {
                "metadata": {"name": f"{{{{name}}}}-{name}", "labels": {"chaos-run": run}},
                "spec": {
                    "project": "default",
                    "source": {"repoURL": REPO, "targetRevision": "HEAD", "path": path},
                    "destination": {"name": "{{name}}", "namespace": "default"},
                },
            },
        },
    }


def synced_and_healthy(app: dict[str, Any] | None) -> tuple[str, str]:
    """An Application's sync and health status, as the hub shows a worker's (Unknown when none)."""
    status = (app or {}).get("status") or {}
    return (
        ((status.get("sync") or {}).get("status")) or UNKNOWN,
        ((status.get("health") or {}).get("status")) or UNKNOWN,
    )


class Fleet:
    """What a user reads: the Lease, the hub's ApplicationSets and Applications, the workers'
    Applications, Maestro's works and status topics, the outbox."""

    def __init__(self, hub: KubeRest, workers: dict[str, KubeRest], chaos: Chaos, run: str) -> None:
        self.hub, self.workers, self.chaos, self.run = hub, workers, chaos, run
        self.lease = f"/apis/coordination.k8s.io/v1/namespaces/default/leases/controllers-{run}"
        self.appsets = f"{ARGOCD}/{INVENTORY}/applicationsets"
        self.names = [f"c{run}-{i:03d}" for i in range(APPSETS)]
        #: every work id of the run ever listed (a deleted one's status reports stay in the topics)
        self.work_ids: set[str] = set()

    def path(self, i: int) -> str:
        return "apps-v2" if changed(i) else "apps"

    def intended(self) -> dict[str, dict[str, str]]:
        """Each cluster's Applications by name, with the source path of their last template."""
        return {
            cluster: {f"{cluster}-{n}": self.path(i) for i, n in enumerate(self.names) if not deleted(i)}
            for cluster in self.workers
        }

    async def holder(self) -> str:
        with contextlib.suppress(NotFoundError):
            return str((await self.hub.request("GET", self.lease))["spec"].get("holderIdentity") or "")
        return ""

    async def works(self) -> Counter[tuple[str, str]]:
        """How many works Maestro holds per (ApplicationSet, cluster) of the run."""
        async with MaestroClient(
            self.chaos.live_server().address,
            source="chaos-observer",
            credentials=self.chaos.rig.credentials(),
        ) as reader:
            async with asyncio.timeout(30):
                listed, _ = await reader.list_summaries(
                    queries.ResourceFilter(source=contract.MAESTRO_SOURCE), with_spec=False, with_status=False
                )
        counted: Counter[tuple[str, str]] = Counter()
        for work in listed:
            owner = ownership.owner(work.metadata())
            if owner is not None and owner[1].startswith(f"c{self.run}-"):
                counted[(owner[1], work.consumer)] += 1
                self.work_ids.add(work.id)
        return counted

    async def applications(self, rest: KubeRest, namespace: str) -> dict[str, list[dict[str, Any]]]:
        listed = await rest.request(
            "GET", f"{ARGOCD}/{namespace}/applications", query=[("labelSelector", f"chaos-run={self.run}")]
        )
        by_name: dict[str, list[dict[str, Any]]] = {}
        for app in listed.get("items") or []:
            by_name.setdefault(app["metadata"]["name"], []).append(app)
        return by_name

    async def outbox(self) -> int:
        async with await psycopg.AsyncConnection.connect(self.chaos.dsn, connect_timeout=10) as conn:
            row = await (await conn.execute("SELECT count(*) FROM outbox")).fetchone()
        return int(row[0]) if row else 0

    async def pending(self) -> list[str]:
        """What keeps the outcome from being exact (empty: it is)."""
        intended = self.intended()
        left: list[str] = []
        works = await self.works()
        wanted = {(n, c) for c, apps in intended.items() for n in self.names if f"{c}-{n}" in apps}
        left += [f"work of {k}: {works[k]}" for k in sorted(wanted) if works[k] != 1]
        left += [f"work of deleted {k}: {v}" for k, v in sorted(works.items()) if k not in wanted]
        appsets = await self.hub.request("GET", self.appsets)
        names = {a["metadata"]["name"] for a in appsets.get("items") or []}
        left += [
            f"ApplicationSet {n} not deleted" for i, n in enumerate(self.names) if deleted(i) and n in names
        ]
        mirrors = await self.applications(self.hub, INVENTORY)
        every = {name: path for apps in intended.values() for name, path in apps.items()}
        left += [f"hub Application {n} left" for n in sorted(set(mirrors) - set(every))]
        for cluster, rest in self.workers.items():
            on_worker = await self.applications(rest, WORKER_NAMESPACE)
            left += [
                f"{cluster}: Application {n} left" for n in sorted(set(on_worker) - set(intended[cluster]))
            ]
            for name, path in intended[cluster].items():
                here, there = on_worker.get(name, []), mirrors.get(name, [])
                if len(here) != 1 or len(there) != 1:
                    left.append(f"{name}: {len(here)} on {cluster}, {len(there)} on the hub")
                    continue
                paths = (here[0]["spec"]["source"]["path"], there[0]["spec"]["source"]["path"])
                if paths != (path, path):
                    left.append(f"{name}: source path {paths} (worker, hub), not {path}")
                elif synced_and_healthy(here[0]) != synced_and_healthy(there[0]):
                    left.append(
                        f"{name}: hub status {synced_and_healthy(there[0])}, "
                        f"{cluster}'s {synced_and_healthy(here[0])}"
                    )
        if (depth := await self.outbox()) != 0:
            left.append(f"outbox: {depth} rows")
        return left


@contextlib.asynccontextmanager
async def controllers(
    hub: kube.Cluster, chaos: Chaos, log_dir: Path, run: str
) -> AsyncIterator[list[LeaderReplica]]:
    folder = chaos.rig.identity(Identity.source(contract.MAESTRO_SOURCE))
    tls = files.TLSFiles(folder / "ca.crt", folder / "tls.crt", folder / "tls.key")
    argv = [
        FLEETPLANE,
        *platform.controllers_args(
            hub.kubeconfig,
            chaos.servers[0].address,
            tls,
            "--leader-elect-resource-name",
            f"controllers-{run}",
        ),
    ]
    replicas = [LeaderReplica(chaos.env, f"chaos/controllers-{run}-{i}", argv, log_dir) for i in (1, 2)]
    try:
        await asyncio.gather(*(asyncio.to_thread(r.start) for r in replicas))
        yield replicas
    finally:
        for r in replicas:
            await asyncio.to_thread(r.forget)


async def delete_served(fleet: Fleet, replicas: list[LeaderReplica]) -> None:
    """The run's ApplicationSets deleted while a replica serves them: their works and Applications
    go with them (bounded; ``remove_left`` takes off what is left)."""
    for name in fleet.names:
        with contextlib.suppress(NotFoundError):
            await fleet.hub.request("DELETE", f"{fleet.appsets}/{name}")
    deadline = time.monotonic() + 90
    while any(r.alive for r in replicas) and time.monotonic() < deadline:
        listed = await fleet.hub.request("GET", fleet.appsets)
        if not any(a["metadata"]["name"] in fleet.names for a in listed.get("items") or []):
            return
        await asyncio.sleep(1)


async def remove_left(fleet: Fleet, secrets: list[dict[str, Any]]) -> None:
    """Once no replica runs: the finalizers of ApplicationSets still there taken off by hand, and
    the inventory Secrets deleted."""
    for name in fleet.names:
        with contextlib.suppress(NotFoundError):
            await fleet.hub.request(
                "PATCH",
                f"{fleet.appsets}/{name}",
                body={"metadata": {"finalizers": None}},
                content_type=MERGE_PATCH,
            )
    for secret in secrets:
        with contextlib.suppress(NotFoundError):
            await fleet.hub.request(
                "DELETE", f"/api/v1/namespaces/{INVENTORY}/secrets/{secret['metadata']['name']}"
            )


async def test_the_controllers_standby_takes_over_a_rollout_of_applications(
    chaos: Chaos, hub: kube.Cluster, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:6]
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": WORKER_NAMESPACE}}
    for cluster in chaos.rig.clusters:
        # The agents apply Argo CD Applications: their CRD and namespace, Argo CD running there or not.
        await asyncio.to_thread(argocd.install_crds, cluster)
        await asyncio.to_thread(kubectl.apply, cluster.kubeconfig, [namespace], field_manager="chaos")
    secrets = [inventory_secret(c.name, run) for c in chaos.rig.clusters]
    inventory = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": INVENTORY}}
    await asyncio.to_thread(kubectl.apply, hub.kubeconfig, [inventory, *secrets], field_manager="chaos")
    rest = KubeRest.from_kubeconfig(hub.kubeconfig)
    workers = {c.name: KubeRest.from_kubeconfig(c.kubeconfig) for c in chaos.rig.clusters}
    fleet = Fleet(rest, workers, chaos, run)
    try:
        async with controllers(hub, chaos, tmp_path, run) as replicas:
            try:

                async def one_leads() -> tuple[bool, Any]:
                    holder = await fleet.holder()
                    return holder in {r.identity() for r in replicas}, holder

                holder = await until("a replica to lead", one_leads, replicas, timeout=60)
                (leader,) = [r for r in replicas if r.identity() == holder]
                (standby,) = [r for r in replicas if r is not leader]
                total = APPSETS * len(workers)
                started = time.monotonic()
                await asyncio.gather(
                    *(
                        rest.request("POST", fleet.appsets, body=application_set(n, run, "apps"))
                        for n in fleet.names
                    )
                )

                async def a_third_served() -> tuple[bool, Any]:
                    served = sum((await fleet.works()).values())
                    return served >= total // 3, served

                served = await until(f"{total // 3} works in Maestro", a_third_served, replicas)
                for i, n in enumerate(fleet.names):
                    if changed(i):
                        await rest.request(
                            "PATCH",
                            f"{fleet.appsets}/{n}",
                            body={"spec": {"template": {"spec": {"source": {"path": "apps-v2"}}}}},
                            content_type=MERGE_PATCH,
                        )
                await asyncio.to_thread(leader.kill_hard)
                killed = time.monotonic()
                chaos.note(
                    f"controllers leader {leader.short} killed -9 with {served}/{total} works in Maestro"
                )
                for i, n in enumerate(fleet.names):
                    if deleted(i):
                        await rest.request("DELETE", f"{fleet.appsets}/{n}")

                async def standby_leads() -> tuple[bool, Any]:
                    holder = await fleet.holder()
                    return holder == standby.identity(), holder

                await until("the standby to take the Lease", standby_leads, replicas, timeout=120)
                takeover = time.monotonic() - killed

                async def exact() -> tuple[bool, Any]:
                    left = await fleet.pending()
                    return not left, f"{len(left)} pending, e.g. {left[:5]}"

                await until(
                    "the exact outcome", exact, [*replicas, *chaos.rig.processes], timeout=300, period=1
                )
                to_exact, from_apply = time.monotonic() - killed, time.monotonic() - started

                sent = await asyncio.to_thread(chaos.sent_statuses, fleet.work_ids)
                twice = {work: seq for work, seq in sent.items() if len(seq) != len(set(seq))}
                assert not twice, f"status sequence ids sent twice: {twice}"
                assert standby.alive and not leader.alive
                print(
                    f"kill -9 of the controllers' leader: ApplicationSets {APPSETS}, Applications {total}, "
                    f"{served} works in Maestro at the kill, takeover {takeover:.1f}, exact {to_exact:.1f} "
                    f"after the kill ({from_apply:.1f} from the apply)"
                )
            finally:
                await delete_served(fleet, replicas)
    finally:
        await remove_left(fleet, secrets)
        await rest.close()
        for worker in workers.values():
            await worker.close()
