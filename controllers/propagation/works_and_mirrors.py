"""Reads and writes of ApplicationSets' works (in Maestro) and hub mirrors, for the propagation.

Used by ``controllers.propagation.controller`` (its passes and finalizer), ``convergence`` (the
writes of one pass) and ``sweep``. Every write is idempotent: a pass that fails is retried whole.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from controllers import contract, hub
from controllers.metrics import ControllerMetrics
from controllers.propagation import concurrency, ownership, plan, replacement
from controllers.propagation.mirror_cache import MirrorCache
from controllers.propagation.settings import MirrorListener, PropagationSettings
from maestro import client_errors
from maestro.api import bundles, queries
from maestro.client import MaestroClient

_T = TypeVar("_T")
_R = TypeVar("_R")


class WorksAndMirrors:
    def __init__(
        self,
        hub_client: hub.HubClient,
        maestro: MaestroClient,
        listener: MirrorListener,
        settings: PropagationSettings,
        source: str,
        metrics: ControllerMetrics,
        cache: MirrorCache | None = None,
    ) -> None:
        self.hub = hub_client
        #: the mirrors as last seen (None: listed by every read)
        self.cache = cache
        self.maestro = maestro
        self.listener = listener
        self.settings = settings
        self.source = source
        self.metrics = metrics

    async def each(
        self,
        items: Sequence[_T],
        write: Callable[[_T], Awaitable[_R]],
        *,
        ready: Callable[[_T], Awaitable[None]] | None = None,
    ) -> list[_R]:
        """``write`` for every item, ``settings.write_concurrency`` at a time (``concurrency.each``)."""
        return await concurrency.each(items, write, limit=self.settings.write_concurrency, ready=ready)

    # --- reads -------------------------------------------------------------------------------------

    async def works(
        self, namespace: str, name: str, *, with_spec: bool, with_status: bool = False
    ) -> list[bundles.BundleRecord]:
        """The works Maestro holds for this ApplicationSet (labels may be hashed, so the full name
        in the annotation decides). Their specs only ``with_spec`` and their statuses only
        ``with_status``: a pass compares spec-hash annotations, and only a RollingSync's gates read
        statuses; at fleet scale decoding thousands of each per pass was wasted work."""
        records, _ = await self.maestro.list(
            queries.ResourceFilter(source=self.source, labels=ownership.owner_labels(namespace, name)),
            with_spec=with_spec,
            with_status=with_status,
        )
        return [r for r in records if ownership.owned_by(r.bundle.metadata, namespace, name)]

    async def mirrors(self, namespace: str, name: str, *, listed: bool = False) -> list[dict[str, Any]]:
        """The metadata of the ApplicationSet's hub mirrors (labels may be hashed, so the full name
        in the annotation decides): from the cache, or ``listed`` from the hub (for a finalizer,
        which must leave none behind)."""
        if self.cache is not None and not listed:
            return await self.cache.mirrors(namespace, name)
        return [
            m
            for m in await self.hub.list_application_metadata(
                namespace, ownership.owner_labels(namespace, name)
            )
            if ownership.owned_by(m.get("metadata") or {}, namespace, name)
        ]

    # --- writes ------------------------------------------------------------------------------------

    async def apply_mirror(self, work: plan.DesiredWork, current: Mapping[str, Any] | None) -> str | None:
        """Create or update the hub mirror (the caller found it missing or out of date) with the
        status known for it now; a problem when the name is taken by an Application that is not
        this ApplicationSet's, or the hub refuses the Application.

        A new mirror is one POST, a changed one a PUT of the whole object (``replacement``): what
        the plan leaves out is removed, what others wrote on it is kept."""
        meta = work.hub_application["metadata"]
        status = self.listener.status_of(meta["namespace"], meta["name"])
        mirror = work.hub_mirror(status)
        try:
            written = await (self._create_mirror(mirror) if current is None else self._replace_mirror(mirror))
        except hub.ClusterError as exc:
            # refused for good (e.g. a field the hub's Application CRD does not declare): the hub
            # names the field, and the same write would be refused again on every pass
            fix = "; fix the ApplicationSet's template" if exc.status in (400, 422) else ""
            return f"the hub refused Application {meta['namespace']}/{meta['name']}: {exc}{fix}"
        if isinstance(written, str):
            return written
        operation, body = written
        self.metrics.mirror_writes.labels(operation).inc()
        self.listener.mirror_written(meta["namespace"], meta["name"], body.get("status"))
        return None

    async def _create_mirror(self, mirror: Mapping[str, Any]) -> str | tuple[str, Mapping[str, Any]]:
        """One POST; a problem when the name is someone else's. An Application of that name set up
        by someone else is refused instead of taken over (and a new name costs one request, not a
        read and a write)."""
        meta, manager = mirror["metadata"], self.settings.field_manager
        try:
            self._wrote(await self.hub.create_application(mirror, field_manager=manager))
            return "create", mirror
        except hub.ConflictError:
            taken = await self.hub.get_application(meta["namespace"], meta["name"])
        if taken is not None and ownership.object_annotations(taken).get(contract.ANNOTATION_APPSET) != (
            ownership.object_annotations(mirror).get(contract.ANNOTATION_APPSET)
        ):
            return (
                f"hub Application {meta['namespace']}/{meta['name']} already exists and does not "
                "belong to this ApplicationSet; rename the template's metadata.name or delete that "
                "Application"
            )
        return await self._replace_mirror(mirror, taken)  # ours, from an older pass

    async def _replace_mirror(
        self, mirror: Mapping[str, Any], stored: Mapping[str, Any] | None = None, attempts: int = 3
    ) -> str | tuple[str, Mapping[str, Any]]:
        """A PUT over the stored mirror, read again when it changed in between (a status write):
        nothing another writer stored since is lost."""
        meta, manager = mirror["metadata"], self.settings.field_manager
        for attempt in range(attempts):
            if stored is None:
                stored = await self.hub.get_application(meta["namespace"], meta["name"])
                if stored is None:  # deleted meanwhile
                    return await self._create_mirror(mirror)
            body = replacement.replacement(mirror, stored)
            try:
                self._wrote(await self.hub.replace_application(body, field_manager=manager))
                return "update", body
            except hub.ConflictError:
                if attempt == attempts - 1:
                    raise
                stored = None
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _wrote(self, reply: Mapping[str, Any]) -> None:
        if self.cache is not None:
            self.cache.wrote(reply.get("metadata") or {})

    async def publish(self, work: plan.DesiredWork, *, create: bool) -> str | None:
        """Send a create or update; a problem message when Maestro refuses it for good."""
        spec = bundles.ManifestBundle(
            manifests=work.bundle["manifests"],
            delete_option=work.bundle.get("deleteOption"),
            manifest_configs=work.bundle.get("manifestConfigs") or [],
        )
        try:
            await self.maestro.apply(
                work.cluster, uuid.UUID(work.work_id), spec, metadata=work.metadata, create=create
            )
        except client_errors.MaestroCallError as exc:
            if exc.retryable:
                raise
            hint = ""
            if isinstance(exc, client_errors.NotFound) and not create:
                hint = " (the work vanished; it is re-created on the next pass)"
            elif isinstance(exc, client_errors.NotFound):
                hint = (
                    f"; is cluster {work.cluster!r} registered with Maestro "
                    f"(`fleetplane maestro consumers create {work.cluster}`)?"
                )
            verb = "create" if create else "update"
            return (
                f"cluster {work.cluster}: Maestro refused to {verb} the work of Application "
                f"{work.application!r}: {exc}{hint}"
            )
        self.metrics.works_published.labels("create" if create else "update").inc()
        return None

    async def acknowledge_refreshes(self, mirrors: Sequence[Mapping[str, Any]]) -> None:
        """Take Argo CD's refresh request off the mirrors that carry one: argocd-server waits for
        it to go (``argocd app get --refresh``). A mirror's status is the fleet's, pushed as its
        cluster reports it, so there is nothing to read again; the cluster's own Argo CD refreshes
        on its schedule."""
        asked = [
            m["metadata"]
            for m in mirrors
            if contract.ANNOTATION_REFRESH in ((m.get("metadata") or {}).get("annotations") or {})
        ]
        for meta in asked:
            with contextlib.suppress(hub.NotFoundError):
                await self.hub.clear_annotations(
                    meta["namespace"], meta["name"], contract.REFRESH_ANNOTATIONS
                )

    async def delete_mirror(self, namespace: str, name: str) -> None:
        if await self.hub.delete_application(namespace, name):
            self.metrics.mirror_writes.labels("delete").inc()
        if self.cache is not None:
            self.cache.removed(namespace, name)
        self.listener.mirror_deleted(namespace, name)

    async def delete_work(self, cluster: str, work_id: str) -> None:
        with contextlib.suppress(client_errors.NotFound):  # already gone is what we wanted
            await self.maestro.delete(cluster, uuid.UUID(work_id))
            self.metrics.works_deleted.inc()
