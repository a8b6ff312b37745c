"""What a request to a kube-apiserver can fail with, as the callers decide on it.

``ClusterUnavailableError`` means retrying later may help (the server was away for the whole retry
budget); the others carry the server's own message and retrying the same request will not help.
"""

from __future__ import annotations


class KubeError(Exception):
    """Base of the errors ``kubeio.rest`` raises."""


class ConflictError(KubeError):
    """409: the object already exists (create) or changed under us (update): re-read, try again."""


class ClusterError(KubeError):
    """The API server refused a request for a reason retrying will not fix (400, 403, 422 ...)."""

    def __init__(self, message: str, *, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class NotFoundError(ClusterError):
    """404: the object (or the API it lives in) does not exist."""


class ClusterUnavailableError(KubeError):
    """The API server could not be reached, or kept failing, for the whole retry budget."""


class UnknownKindError(KubeError):
    """The cluster serves no resource for an apiVersion/kind (not even after a refresh)."""
