"""The ``simulated`` provider: clusters that exist only in the provisioner's memory, as Cluster API's
in-memory provider has them, to measure the provisioner itself at a scale no machine could run real
clusters at (``fleetplane bench provision --simulated``).

Everything else is real: claims, composites, compositions and revisions, the hub inventory and the
connection Secrets on the management cluster; consumers and certificates in Maestro; every composed
resource rendered and applied. Only the cluster's own API is a dictionary (``MemoryObjects``): what
is applied to it is kept, Deployments and StatefulSets are reported ready at once, CRDs established.
Its agent is taken to be running until the cluster is deleted; a restarted provisioner finds its
simulated clusters again empty and applies everything anew.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubeio import objects
from kubeio.errors import NotFoundError
from provisioner.providers.base import (
    ClusterObjects,
    ClusterProvider,
    ClusterSpec,
    ClusterState,
    Phase,
    is_workload,
    replicas_ready,
)

DOMAIN = "simulated.fleetplane.local"

Key = tuple[str, str, str, str]


class MemoryObjects(objects.Objects):
    """A cluster API that keeps what it is given: server-side apply replaces the whole object (no
    field ownership), ``status`` is merged, nothing is ever refused."""

    def __init__(self) -> None:  # no REST client: nothing is sent anywhere
        self.kind_timeout = 0.0
        self.store: dict[Key, dict[str, Any]] = {}
        self._version = 0

    @staticmethod
    def key(obj: Mapping[str, Any]) -> Key:
        meta = obj.get("metadata") or {}
        return (
            str(obj.get("apiVersion") or ""),
            str(obj.get("kind") or ""),
            str(meta.get("namespace") or ""),
            str(meta.get("name") or ""),
        )

    def _stamp(self, stored: dict[str, Any]) -> dict[str, Any]:
        self._version += 1
        meta = dict(stored.get("metadata") or {})
        meta["resourceVersion"] = str(self._version)
        meta["generation"] = int(meta.get("generation") or 0) + 1
        stored["metadata"] = meta
        return stored

    # Objects are kept and handed back as they are, not copied: Argo CD's CRDs are large, and a
    # thousand clusters' worth of copies would be what the benchmark measured. Every caller builds
    # a new object for each apply and reads what it gets back without changing it.
    async def apply(
        self, obj: Mapping[str, Any], *, field_manager: str, force: bool = True
    ) -> dict[str, Any]:
        key = self.key(obj)
        stored = dict(obj)
        current = self.store.get(key)
        if current is not None and "status" in current:
            stored["status"] = current["status"]
        self.store[key] = stored
        return self._stamp(stored)

    async def get(self, obj: Mapping[str, Any]) -> dict[str, Any] | None:
        return self.store.get(self.key(obj))

    async def delete(self, obj: Mapping[str, Any], *, propagation: str = "Background") -> bool:
        return self.store.pop(self.key(obj), None) is not None

    async def patch_status(self, obj: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
        stored = self.store.get(self.key(obj))
        if stored is None:
            raise NotFoundError(f"{objects.describe(obj)} not found")
        stored["status"] = {**(stored.get("status") or {}), **(patch.get("status") or {})}
        return self._stamp(stored)

    async def wait_established(self, crd_name: str, timeout: float = 60.0) -> None:
        return None


class SimulatedProvider(ClusterProvider):
    name = "simulated"

    def __init__(self) -> None:
        self.clusters: dict[str, MemoryObjects] = {}

    async def ensure(self, spec: ClusterSpec) -> ClusterState:
        self.clusters.setdefault(spec.name, MemoryObjects())
        server = f"https://{spec.name}.{DOMAIN}"
        return ClusterState(
            Phase.READY,
            "simulated",
            endpoint=server,
            kubeconfig=_kubeconfig(spec.name, server),
            details={"nodeCount": str(spec.node_count), "version": spec.version},
        )

    async def delete(self, spec: ClusterSpec) -> ClusterState:
        self.clusters.pop(spec.name, None)
        return ClusterState(Phase.DELETED, "simulated cluster forgotten")

    def cluster_objects(self, cluster: str) -> objects.Objects | None:
        return self.clusters.get(cluster)

    async def run_workload(
        self, cluster: str, objects: ClusterObjects, workload: Mapping[str, Any]
    ) -> tuple[bool, str]:
        """Every replica ready at once, written as its controller would."""
        if is_workload(workload):
            replicas = int((workload.get("spec") or {}).get("replicas") or 1)
            ready = {"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas}
            workload = await objects.patch_status(workload, {"status": ready})
        return replicas_ready(workload)

    def agent_alive(self, cluster: str) -> bool:
        return cluster in self.clusters


def _kubeconfig(name: str, server: str) -> dict[str, Any]:
    """A kubeconfig naming the simulated cluster (nothing answers there: the provisioner reaches it
    through ``cluster_objects``)."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server}}],
        "users": [{"name": name, "user": {}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }
