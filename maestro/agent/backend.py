"""The few cluster operations a `bundle_applier.BundleApplier` needs: the `Backend` protocol.

Two implementations: `kube.KubeBackend` (a kube-apiserver over HTTP) and `memory.MemoryBackend`
(objects in a dict, for simulated agents and tests).
"""

from __future__ import annotations

import enum
from typing import Any, Protocol

from kubeio.discovery import ResourceType
from maestro.agent.manifests import ObjectRef

JsonObject = dict[str, Any]


class DeleteState(enum.Enum):
    GONE = "gone"  # deleted at once
    DELETING = "deleting"  # still there: finalizers or Foreground dependents first
    ABSENT = "absent"  # nothing to delete, or another object (uid differs) now has the name


class Backend(Protocol):
    """The few cluster operations the bundle applier needs; `kube.KubeBackend` and `memory.MemoryBackend`.

    Reads return None for an absent object; writes return the object as stored. Errors are
    `errors.AgentError`s: `ConflictError` (exists / changed), `UnknownKindError`, `ClusterError`,
    `ClusterUnavailableError`.
    """

    async def prepare(self) -> None: ...

    async def close(self) -> None: ...

    async def resolve(self, group: str, version: str, kind: str) -> ResourceType: ...

    async def get(self, ref: ObjectRef) -> JsonObject | None: ...

    async def create(self, ref: ObjectRef, body: JsonObject) -> JsonObject: ...

    async def replace(self, ref: ObjectRef, body: JsonObject) -> JsonObject: ...

    async def server_side_apply(
        self, ref: ObjectRef, body: JsonObject, *, field_manager: str, force: bool
    ) -> JsonObject: ...

    async def delete(self, ref: ObjectRef, *, uid: str, propagation: str) -> DeleteState:
        """Delete the object if it still has `uid` (a precondition, so never someone else's)."""
        ...

    async def remove_label(self, ref: ObjectRef, label: str, *, uid: str) -> None: ...

    async def list_records(self, consumer: str) -> list[JsonObject]: ...

    async def review(self, spec: JsonObject) -> bool:
        """Whether a SubjectAccessReview with this ``spec`` is allowed (a work's executor)."""
        ...

    async def put_record(self, obj: JsonObject) -> None: ...

    async def delete_record(self, name: str) -> None: ...
