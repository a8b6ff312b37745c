"""The ``local`` provider: a worker cluster is a real kube-apiserver on this machine.

It goes through ``localinfra``'s one code path for local clusters (shared etcd, its own prefix,
client-certificate kubeconfig), in an environment of its own inside the management environment,
so ``fleetplane local down`` takes the provisioned clusters down too. A cluster whose processes
are alive is adopted as it is, which is what makes a provisioner restart start no duplicates.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import yaml

from localinfra import kube
from localinfra.environment import Environment
from localinfra.errors import InfraError
from provisioner.providers.base import ClusterSpec, ClusterState, Phase, ProviderError


class LocalProvider:
    name = "local"

    def __init__(self, env: Environment, etcd_url: str) -> None:
        self.env = env
        self.etcd_url = etcd_url
        # ensure/delete of one cluster never overlap (a slow start and a retry would both start it)
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    def kubeconfig_path(self, name: str) -> Path:
        return Path(self.env.endpoint(f"cluster/{name}")["kubeconfig"])

    async def ensure(self, spec: ClusterSpec) -> ClusterState:
        async with self._lock(spec.name):
            adopted = kube.is_running(self.env, spec.name)
            if not adopted:
                # What is left of a crashed cluster goes; its etcd prefix stays, so the objects
                # it held come back with the new API server.
                self.env.stop_processes(f"{spec.name}/kube-")
                try:
                    await asyncio.to_thread(kube.start, self.env, spec.name, self.etcd_url)
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
