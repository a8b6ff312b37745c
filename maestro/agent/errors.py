"""Errors of the agent's cluster-facing layer.

Raised by `manifests` (a malformed manifest or config), `jsonpath` (a bad feedback path), the
backends (`kube`, `memory`) and `kubeio.rest` (the API server's refusals); caught by `bundle_applier`,
which turns each into a per-manifest message for the bundle's status, so one bad manifest never
stops the others.
"""

from __future__ import annotations

from kubeio.errors import (
    ClusterError,
    ClusterUnavailableError,
    ConflictError,
    KubeError,
    NotFoundError,
    UnknownKindError,
)

# One base for the agent's own errors and the API server's: the bundle applier catches them as one.
AgentError = KubeError

__all__ = [
    "AgentError",
    "ClusterError",
    "ClusterUnavailableError",
    "ConflictError",
    "JsonPathError",
    "ManifestError",
    "NotFoundError",
    "UnknownKindError",
]


class ManifestError(AgentError):
    """A manifest or its manifestConfig is unusable; the message names the manifest and the field."""


class JsonPathError(AgentError):
    """A feedback rule's path is not in the JSONPath subset we evaluate."""
