"""The hub mirrors as the propagation last saw them: one metadata-only list-and-watch of every
Application the propagation labels, instead of a list per pass.

A pass needs each mirror of its ApplicationSet by name, with the annotations that say whose it is,
which plan it was written from and whether Argo CD asks for a refresh. Listed per pass, that was a
label-selected list over every Application of the hub: at 3,000 clusters x 50 ApplicationSets, 50
lists a minute, each walking 150,000 objects; while the hub was busy they timed out, the passes
were retried and listed again, and the hub API server spent its core on them while statuses
waited. Argo CD's own controllers read Applications from an informer's cache; so does this.

The cache is at most as old as the watch is behind. What a pass writes goes into it at once (the
reply's metadata), and an event older than what is held (a lower resourceVersion) does not replace
it, so a pass never works from less than it wrote itself. A mirror deleted by a pass is kept out
until its deletion is seen. Anything else a stale entry leads a pass to do is idempotent (a create
answered 409 is read and replaced if it is ours, a delete answered 404 is done) and the next pass
works from a newer view: the passes stay level-based.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from controllers import contract, hub
from controllers.metrics import ControllerMetrics

log = logging.getLogger(__name__)

#: the annotations a pass reads of a mirror (the others are not kept: 150,000 mirrors in memory)
KEPT_ANNOTATIONS = frozenset(
    {contract.ANNOTATION_APPSET, contract.ANNOTATION_MIRROR_HASH, *contract.REFRESH_ANNOTATIONS}
)
#: how long a pass waits for the first list before it fails (and is retried) as if the hub were away
SYNC_TIMEOUT_SECONDS = 30.0

_Name = tuple[str, str]


@dataclasses.dataclass(frozen=True, slots=True)
class _Mirror:
    namespace: str
    name: str
    resource_version: str
    annotations: Mapping[str, str]

    @property
    def owner(self) -> str:
        return self.annotations.get(contract.ANNOTATION_APPSET, "")

    def as_object(self) -> dict[str, Any]:
        """The mirror as a metadata-only object, as a list of the hub answers it."""
        return {
            "metadata": {
                "namespace": self.namespace,
                "name": self.name,
                "resourceVersion": self.resource_version,
                "annotations": dict(self.annotations),
            }
        }


def _slim(meta: Mapping[str, Any]) -> _Mirror | None:
    namespace, name = meta.get("namespace"), meta.get("name")
    if not namespace or not name:
        return None
    annotations = meta.get("annotations") or {}
    return _Mirror(
        str(namespace),
        str(name),
        str(meta.get("resourceVersion") or ""),
        {k: str(v) for k, v in annotations.items() if k in KEPT_ANNOTATIONS},
    )


def _older(version: str, than: str) -> bool:
    """Whether ``version`` precedes ``than``. Resource versions are opaque to clients, but the hub's
    (etcd's revisions) are increasing integers; anything else is never called older."""
    try:
        return int(version) < int(than)
    except ValueError:
        return False


class MirrorCache:
    def __init__(self, hub_client: hub.HubClient, metrics: ControllerMetrics | None = None) -> None:
        self.hub = hub_client
        self.metrics = metrics
        self._mirrors: dict[_Name, _Mirror] = {}
        #: (namespace, owner annotation) -> mirror names: a pass reads its own, not all 150,000
        self._by_owner: dict[tuple[str, str], set[str]] = {}
        #: mirrors a pass deleted, kept out until the watch tells of their deletion
        self._deleted: set[_Name] = set()
        self._synced = asyncio.Event()

    # --- what passes read and tell ---------------------------------------------------------------

    async def mirrors(self, namespace: str, appset: str) -> list[dict[str, Any]]:
        """The mirrors of ApplicationSet ``namespace/appset`` (in its namespace), as metadata-only
        objects; waits for the first list."""
        if not self._synced.is_set():
            try:
                async with asyncio.timeout(SYNC_TIMEOUT_SECONDS):
                    await self._synced.wait()
            except TimeoutError:
                raise hub.ClusterUnavailableError(
                    f"the hub's Applications were not listed within {SYNC_TIMEOUT_SECONDS:.0f}s"
                ) from None
        names = self._by_owner.get((namespace, f"{namespace}/{appset}"), ())
        return [self._mirrors[(namespace, n)].as_object() for n in sorted(names)]

    def wrote(self, meta: Mapping[str, Any]) -> None:
        """A pass created or replaced this mirror; ``meta`` is the hub's reply."""
        mirror = _slim(meta)
        if mirror is not None:
            self._deleted.discard((mirror.namespace, mirror.name))
            self._put(mirror)

    def removed(self, namespace: str, name: str) -> None:
        """A pass deleted this mirror."""
        if self._drop((namespace, name)):
            self._deleted.add((namespace, name))

    def __len__(self) -> int:
        return len(self._mirrors)

    # --- the watch -------------------------------------------------------------------------------

    async def run(self) -> NoReturn:
        """List and watch until cancelled."""
        await self.hub.follow_application_metadata(
            contract.LABEL_APPSET_NAME, self._listed, self._changed, on_error=self._interrupted
        )

    def _interrupted(self, exc: Exception) -> None:
        log.warning("watch of the hub's mirrors interrupted (%s); listing them again", exc)
        if self.metrics is not None:
            self.metrics.errors.labels("mirror-watch").inc()

    def _listed(self, items: Sequence[Mapping[str, Any]]) -> None:
        self._mirrors.clear()
        self._by_owner.clear()
        self._deleted.clear()
        for item in items:
            mirror = _slim(item.get("metadata") or {})
            if mirror is not None:
                self._put(mirror)
        self._synced.set()

    def _changed(self, kind: str, obj: Mapping[str, Any]) -> None:
        mirror = _slim(obj.get("metadata") or {})
        if mirror is None:
            return
        key = (mirror.namespace, mirror.name)
        held = self._mirrors.get(key)
        if held is not None and _older(mirror.resource_version, held.resource_version):
            return  # a pass already wrote a newer one
        if kind == "DELETED":
            self._deleted.discard(key)
            self._drop(key)
        elif key not in self._deleted:
            self._put(mirror)

    def _put(self, mirror: _Mirror) -> None:
        key = (mirror.namespace, mirror.name)
        held = self._mirrors.get(key)
        if held is not None and held.owner != mirror.owner:
            self._unindex(held)
        self._mirrors[key] = mirror
        self._by_owner.setdefault((mirror.namespace, mirror.owner), set()).add(mirror.name)

    def _drop(self, key: _Name) -> bool:
        held = self._mirrors.pop(key, None)
        if held is None:
            return False
        self._unindex(held)
        return True

    def _unindex(self, mirror: _Mirror) -> None:
        owned = self._by_owner.get((mirror.namespace, mirror.owner))
        if owned is not None:
            owned.discard(mirror.name)
            if not owned:
                del self._by_owner[(mirror.namespace, mirror.owner)]
