"""The ``local`` provider: a worker cluster is a real kube-apiserver on this machine.

It goes through ``localinfra``'s one code path for local clusters (shared etcd, its own prefix,
client-certificate kubeconfig), in an environment of its own inside the management environment,
so ``fleetplane local down`` takes the provisioned clusters down too. A cluster whose processes
are alive is adopted as it is, which is what makes a provisioner restart start no duplicates.

A local cluster has no kubelet: the workloads applied to it that we know run as local processes
(``local_workloads``), stopped once its works are drained and before it goes. Every process of a
worker runs with ``localinfra.tuning.TUNED`` unless the provider is given another tuning.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from localinfra import kube
from localinfra.environment import Environment
from localinfra.errors import InfraError
from localinfra.tuning import TUNED, WorkerTuning
from provisioner.providers.base import (
    ClusterObjects,
    ClusterProvider,
    ClusterSpec,
    ClusterState,
    Phase,
    ProviderError,
)
from provisioner.providers.local_workloads import (
    AGENT,
    LocalWorkloads,
    component,
    status_patch,
    tls_secret_name,
)


class LocalProvider(ClusterProvider):
    name = "local"

    def __init__(self, env: Environment, etcd_url: str, tuning: WorkerTuning = TUNED) -> None:
        self.env = env
        self.etcd_url = etcd_url
        self.tuning = tuning
        self.workloads = LocalWorkloads(env, tuning)
        # ensure/delete of one cluster never overlap (a slow start and a retry would both start it)
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    async def ensure(self, spec: ClusterSpec) -> ClusterState:
        async with self._lock(spec.name):
            adopted = kube.is_running(self.env, spec.name)
            if not adopted:
                # What is left of a crashed cluster goes; its etcd prefix stays, so the objects
                # it held come back with the new API server.
                self.env.stop_processes(f"{spec.name}/kube-")
                try:
                    await asyncio.to_thread(
                        kube.start, self.env, spec.name, self.etcd_url, tuning=self.tuning
                    )
                except InfraError as exc:
                    raise ProviderError("ClusterStartFailed", str(exc)) from exc
            endpoint = self.env.endpoint(f"cluster/{spec.name}")
            kubeconfig = yaml.safe_load(await asyncio.to_thread(Path(endpoint["kubeconfig"]).read_text))
            return ClusterState(
                Phase.READY,
                "adopted the running cluster" if adopted else "started",
                endpoint=endpoint["server"],
                kubeconfig=kubeconfig,
                details={
                    "apiserver": endpoint["server"],
                    "etcdPrefix": f"/clusters/{spec.name}/",
                    "folder": str(self.env.root / "clusters" / spec.name),
                },
            )

    async def delete(self, spec: ClusterSpec) -> ClusterState:
        async with self._lock(spec.name):
            problems = await asyncio.to_thread(kube.delete, self.env, spec.name, self.etcd_url)
            if problems:
                return ClusterState(Phase.DELETING, "; ".join(problems))
            return ClusterState(Phase.DELETED, "processes stopped, etcd prefix and folder removed")

    async def run_workload(
        self, cluster: str, objects: ClusterObjects, workload: Mapping[str, Any]
    ) -> tuple[bool, str]:
        """Run a workload we know as a local process and write its readiness into its status, as
        its controller would; others are read as on any cluster."""
        if component(workload) is None:
            return await super().run_workload(cluster, objects, workload)
        tls_secret = None
        secret_name = tls_secret_name(workload)
        if component(workload) == AGENT and secret_name:
            namespace = str((workload.get("metadata") or {}).get("namespace") or "default")
            tls_secret = await objects.get(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": secret_name, "namespace": namespace},
                }
            )
        state = await self.workloads.run(
            kube.Cluster.from_env(self.env, cluster), workload, tls_secret=tls_secret
        )
        await objects.patch_status(workload, status_patch(workload, state))
        return state.ready, state.message

    def agent_alive(self, cluster: str) -> bool:
        return self.workloads.agent_alive(cluster)

    def stop_agent(self, cluster: str) -> None:
        self.workloads.stop_agent(cluster)

    def stop_workloads(self, cluster: str) -> None:
        self.workloads.stop(cluster)
