"""What one propagation pass did, and whether a failed one is worth retrying soon.

Returned by ``controllers.propagation.controller`` (a pass) and read by its daemon loop and the
kopf handlers (``controllers.propagation.handlers``), which report it on the ApplicationSet.
"""

from __future__ import annotations

import dataclasses

from controllers import hub
from maestro import client_errors


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one pass did."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    mirrors_applied: int = 0
    mirrors_deleted: int = 0
    #: messages for the ApplicationSet's author: generation, planning and publishing errors
    problems: tuple[str, ...] = ()
    #: why some changes were held back (applicationsSync policy, rollout, pending deletions)
    notes: tuple[str, ...] = ()
    generation_failed: bool = False
    rolling: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted or self.mirrors_deleted)

    def describe(self) -> str:
        return (
            f"works: {self.created} created, {self.updated} updated, {self.deleted} deleted; "
            f"mirrors: {self.mirrors_applied} applied, {self.mirrors_deleted} deleted"
        )


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, client_errors.MaestroCallError):
        return exc.retryable
    if isinstance(exc, hub.ClusterError):
        return exc.status == 0 or exc.status == 429 or exc.status >= 500
    return isinstance(exc, hub.ClusterUnavailableError | ConnectionError | TimeoutError)
