"""The contract every cluster provider meets.

A provider turns a :class:`ClusterSpec` into a running control plane and back. Both calls are
idempotent and level-based: the reconciler calls them again after every restart or failure, so
``ensure`` must adopt what already exists (never create a second cluster) and ``delete`` must
succeed when the cluster is already gone.

A cluster with nodes runs the Deployments and StatefulSets applied to it, and its Maestro agent goes
with it; a provider without a kubelet (``local``) runs them itself, and says so through the
workload hooks, which the others leave at their defaults.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

#: what a kubelet-backed controller runs as pods: ready once its replicas are
WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet"})


class Phase(StrEnum):
    CREATING = "Creating"
    READY = "Ready"
    FAILED = "Failed"
    DELETING = "Deleting"
    DELETED = "Deleted"


@dataclass(frozen=True)
class ClusterSpec:
    """What a composition asks of a provider; ``name`` is unique per provider."""

    name: str
    version: str = ""
    region: str = ""
    node_count: int = 1
    instance_type: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    # Provider-specific settings (subnets, role ARNs, ...), checked by the provider itself.
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ClusterState:
    phase: Phase
    message: str = ""
    endpoint: str = ""
    # A complete kubeconfig (as a dict) once the control plane answers; None before that.
    kubeconfig: dict[str, Any] | None = None
    # What the provider wants remembered about the cluster (ARNs, local folders), for ``trace``.
    details: dict[str, str] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.phase is Phase.READY


class ProviderError(Exception):
    """A failure the user can act on: ``reason`` is a short CamelCase word for conditions."""

    def __init__(self, reason: str, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retryable = retryable


class ClusterObjects(Protocol):
    """The provisioned cluster's API as the workload hooks use it (``kubeio.objects.Objects``)."""

    async def get(self, obj: Mapping[str, Any]) -> dict[str, Any] | None: ...

    async def patch_status(self, obj: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]: ...


def is_workload(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") in WORKLOAD_KINDS


def replicas_ready(workload: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether a Deployment or StatefulSet has all its replicas ready, as its controller reports."""
    status = workload.get("status") or {}
    replicas = int((workload.get("spec") or {}).get("replicas") or 1)
    ready = int(status.get("readyReplicas") or 0) >= replicas
    return ready, f"{status.get('readyReplicas') or 0}/{replicas} replicas ready"


class ClusterProvider(ABC):
    name: str

    @abstractmethod
    async def ensure(self, spec: ClusterSpec) -> ClusterState:
        """Create the cluster if it does not exist, else observe it; never blocks the event loop."""

    @abstractmethod
    async def delete(self, spec: ClusterSpec) -> ClusterState:
        """Start or continue deleting; returns ``Phase.DELETED`` once nothing is left."""

    async def run_workload(
        self, cluster: str, objects: ClusterObjects, workload: Mapping[str, Any]
    ) -> tuple[bool, str]:
        """Whether a workload just applied to ``cluster`` runs, and what it is doing."""
        return replicas_ready(workload)

    def cluster_objects(self, cluster: str) -> object | None:
        """The cluster's API (a ``kubeio.objects.Objects``) when the provider serves it itself (the
        simulated provider's memory); None: reached through the kubeconfig ``ensure`` returned."""
        return None

    def agent_alive(self, cluster: str) -> bool:
        """Whether the cluster's Maestro agent may still remove its works; deletion waits for it
        while it is. An agent inside the cluster cannot be seen from here: the drain timeout decides."""
        return True

    def stop_agent(self, cluster: str) -> None:
        """Stop the cluster's Maestro agent once its works are drained, if this provider runs it."""
        return None

    def stop_workloads(self, cluster: str) -> None:
        """Stop what this provider runs for the cluster, before the cluster itself goes."""
        return None
