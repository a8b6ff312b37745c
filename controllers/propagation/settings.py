"""How the propagation controller is configured, and what it tells the status side.

Built by ``controllers.operator`` (from ``fleetplane controllers`` options) and read by
``controllers.propagation.controller`` and the modules of its pass.
"""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
from collections.abc import Iterable, Mapping
from typing import Any, Protocol


@dataclasses.dataclass(frozen=True)
class PropagationSettings:
    #: where the hub's Argo CD cluster Secrets (the inventory) live, as in an Argo CD install
    inventory_namespace: str = "argocd"
    #: seconds between two passes over an ApplicationSet when nothing wakes it
    resync_seconds: float = 60.0
    #: seconds before a pass that failed for a transient reason (Maestro or the hub away) is retried;
    #: doubled at each failure in a row, up to four times this
    retry_seconds: float = 5.0
    #: passes planning and sending their works at once, over all ApplicationSets (a pass gives its
    #: place up once its works are out: writing its mirrors waits on the hub and on the clusters)
    concurrency: int = 4
    #: passes under way at once, those still writing their mirrors included (each holds its plan's
    #: rendered documents until it ends)
    passes_under_way: int = 50
    #: targets whose work was sent and whose mirror is not yet written, over all ApplicationSets:
    #: how far the works may run ahead of the hub (at 3,000 x 50, unbounded, they flooded the
    #: status path the mirrors wait on while the hub API server sat idle)
    targets_in_flight: int = 8000
    #: writes in flight at once within one pass (hub mirrors, then Maestro publishes, then deletes)
    write_concurrency: int = 32
    #: seconds a mirror waits, once its work went out, for the status its cluster reports for that
    #: work, so that the mirror is written with it (one hub write instead of a write and a patch)
    mirror_status_seconds: float = 10.0
    field_manager: str = "fleetplane-propagation"
    #: ``plural.version.group`` of cluster decision resources whose changes wake the daemons of their
    #: namespace (others are picked up by the periodic pass)
    decision_resources: tuple[str, ...] = ("placementdecisions.v1beta1.cluster.open-cluster-management.io",)
    #: where the git generator keeps its clones, and how often it reads a repository revision again
    git_cache_dir: str = dataclasses.field(default_factory=lambda: f"{tempfile.gettempdir()}/fleetplane-git")
    git_poll_seconds: float = 180.0


class MirrorListener(Protocol):
    """The status side of the hub mirrors: what status a mirror should carry when it is written,
    and which mirrors were written (with what status) or deleted, so the status writer knows what
    each holds."""

    def status_of(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...

    def expect(self, namespace: str, name: str, newer_than: int) -> asyncio.Future[None]: ...

    def release(self, namespace: str, names: Iterable[str]) -> None: ...

    def mirror_written(self, namespace: str, name: str, status: Mapping[str, Any] | None) -> None: ...

    def mirrors_seen(self, namespace: str, names: Iterable[str]) -> None: ...

    def mirror_deleted(self, namespace: str, name: str) -> None: ...
