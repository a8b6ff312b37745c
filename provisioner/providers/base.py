"""The contract every cluster provider meets.

A provider turns a :class:`ClusterSpec` into a running control plane and back. Both calls are
idempotent and level-based: the reconciler calls them again after every restart or failure, so
``ensure`` must adopt what already exists (never create a second cluster) and ``delete`` must
succeed when the cluster is already gone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol


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


class ClusterProvider(Protocol):
    name: str

    async def ensure(self, spec: ClusterSpec) -> ClusterState:
        """Create the cluster if it does not exist, else observe it; never blocks the event loop."""
        ...

    async def delete(self, spec: ClusterSpec) -> ClusterState:
        """Start or continue deleting; returns ``Phase.DELETED`` once nothing is left."""
        ...
