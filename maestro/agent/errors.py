"""Errors of the agent's cluster-facing layer.

Raised by `manifests` (a malformed manifest or config), `jsonpath` (a bad feedback path) and the
backends (`kube`, `memory`); caught by `engine`, which turns each into a per-manifest message for
the bundle's status, so one bad manifest never stops the others.
"""

from __future__ import annotations


class AgentError(Exception):
    """Base of every error this package raises on purpose."""


class ManifestError(AgentError):
    """A manifest or its manifestConfig is unusable; the message names the manifest and the field."""


class JsonPathError(AgentError):
    """A feedback rule's path is not in the JSONPath subset we evaluate."""


class UnknownKindError(AgentError):
    """The cluster serves no resource for a manifest's apiVersion/kind (not even after a refresh)."""


class ConflictError(AgentError):
    """The object already exists (create) or changed under us (update): re-read and try again."""


class ClusterError(AgentError):
    """The API server refused a request for a reason retrying will not fix (400, 403, 422 ...)."""

    def __init__(self, message: str, *, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class NotFoundError(ClusterError):
    """404: the object (or the API it lives in) does not exist."""


class ClusterUnavailableError(AgentError):
    """The API server could not be reached, or kept failing, for the whole retry budget."""
