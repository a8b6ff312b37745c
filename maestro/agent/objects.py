"""One object of a bundle read, written or deleted by the ownership rules (see `bundle_applier`):
only an object carrying the bundle's marker, or the uid recorded for it, is the bundle's own."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from maestro.agent.applier import ManifestOutcome
from maestro.agent.backend import Backend, DeleteState, JsonObject
from maestro.agent.errors import AgentError, ClusterError, ConflictError, ManifestError
from maestro.agent.manifests import (
    CREATE_ONLY,
    MARKER_LABEL,
    READ_ONLY,
    SERVER_SIDE_APPLY,
    UPDATE,
    ObjectRef,
    desired_body,
    has_marker,
    marker_value,
)
from maestro.agent.plans import Plan
from maestro.agent.records import AppliedResource

log = logging.getLogger(__name__)

_UPDATE_ATTEMPTS = 3


async def read(backend: Backend, ref: ObjectRef) -> JsonObject | None:
    """The live object, or None when the agent may not read it: a manifest outside the agent's
    RBAC reports itself not available instead of failing the status of every other bundle."""
    try:
        return await backend.get(ref)
    except ClusterError as exc:
        if exc.status == 403:
            return None
        raise


async def apply(
    backend: Backend, resource_id: str, plan: Plan, old_entry: AppliedResource | None
) -> ManifestOutcome:
    """Write one planned manifest (read it, for ReadOnly); a failure is the outcome, never raised."""
    meta, strategy = plan.meta, plan.strategy
    try:
        return await _write(backend, resource_id, plan, old_entry)
    except AgentError as exc:
        return ManifestOutcome(meta, False, f"{meta.describe()}: {exc}", strategy=strategy.type)
    except Exception as exc:  # one manifest's surprise must not stop the bundle or the agent
        log.exception("applying %s of bundle %s failed", meta.describe(), resource_id)
        return ManifestOutcome(
            meta, False, f"{meta.describe()}: {type(exc).__name__}: {exc}", strategy=strategy.type
        )


async def _write(
    backend: Backend, resource_id: str, plan: Plan, old_entry: AppliedResource | None
) -> ManifestOutcome:
    meta, strategy = plan.meta, plan.strategy
    ref = meta.ref
    live: JsonObject | None = None
    if strategy.type == READ_ONLY:
        live = await backend.get(ref)
        return ManifestOutcome(meta, True, live=live, strategy=READ_ONLY)
    fetched = strategy.type != SERVER_SIDE_APPLY or old_entry is None
    if fetched:
        live = await backend.get(ref)
    ours = not fetched or live is None or has_marker(live, resource_id)
    if not ours and old_entry is not None and old_entry.uid:
        ours = uid(live) == old_entry.uid
    body = desired_body(plan.manifest, meta, marker_value(resource_id) if ours else None)
    if strategy.type == SERVER_SIDE_APPLY:
        stored = await backend.server_side_apply(
            ref, body, field_manager=strategy.field_manager, force=strategy.force
        )
    elif strategy.type == UPDATE:
        stored = await _update(backend, ref, body, live)
    elif strategy.type == CREATE_ONLY:
        if live is None:
            try:
                stored = await backend.create(ref, body)
            except ConflictError:
                # Created by someone else between our read and our write: theirs, not ours.
                stored = await backend.get(ref) or {}
                ours = has_marker(stored, resource_id)
        else:
            stored = live
    else:  # pragma: no cover - strategies are validated when parsed
        raise ManifestError(f"unknown update strategy {strategy.type!r}")
    return ManifestOutcome(meta, True, live=stored, strategy=strategy.type, owned=ours)


async def _update(backend: Backend, ref: ObjectRef, body: JsonObject, live: JsonObject | None) -> JsonObject:
    for _ in range(_UPDATE_ATTEMPTS):
        if live is None:
            try:
                return await backend.create(ref, body)
            except ConflictError:
                live = await backend.get(ref)
                continue
        try:
            return await backend.replace(ref, _merged_for_update(body, live))
        except ConflictError:
            live = await backend.get(ref)
    raise ConflictError(f"the object kept changing during {_UPDATE_ATTEMPTS} update attempts")


async def delete_owned(
    backend: Backend, resource_id: str, resource: AppliedResource, propagation: str
) -> AppliedResource | None:
    """Delete one recorded object if it is still ours; returns it (uid known) while it goes."""
    known = resource.uid
    if not known:
        # Recorded before its write was confirmed: ours only if it carries our marker (one the
        # agent may not even read it never wrote).
        live = await read(backend, resource.ref)
        if live is None or not has_marker(live, resource_id):
            return None
        known = uid(live)
    state = await backend.delete(resource.ref, uid=known, propagation=propagation)
    return dataclasses.replace(resource, uid=known) if state is DeleteState.DELETING else None


async def wait_gone(
    backend: Backend, waiting: list[AppliedResource], wait: float, poll: float
) -> tuple[list[AppliedResource], list[AppliedResource]]:
    """Poll for up to ``wait`` seconds until the objects being deleted are gone: (still there, gone)."""
    gone: list[AppliedResource] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while waiting and loop.time() < deadline:
        await asyncio.sleep(poll)
        still: list[AppliedResource] = []
        for resource in waiting:
            live = await backend.get(resource.ref)
            if live is not None and uid(live) == resource.uid:
                still.append(resource)
            else:
                gone.append(resource)
        waiting = still
    return waiting, gone


async def unmark(backend: Backend, resource_id: str, resource: AppliedResource) -> None:
    """Orphaning leaves the object but takes our marker off: it is no longer the bundle's."""
    live = await backend.get(resource.ref)
    if live is None or not has_marker(live, resource_id):
        return
    if resource.uid and uid(live) != resource.uid:
        return
    await backend.remove_label(resource.ref, MARKER_LABEL, uid=uid(live))


def _merged_for_update(body: JsonObject, live: JsonObject) -> JsonObject:
    """A full replacement that keeps what others legitimately add to an object we update."""
    live_meta = live.get("metadata") or {}
    meta = dict(body.get("metadata") or {})
    for key in ("labels", "annotations"):
        merged = {**(live_meta.get(key) or {}), **(meta.get(key) or {})}
        if merged:
            meta[key] = merged
    for key in ("finalizers", "ownerReferences"):
        if key not in meta and key in live_meta:
            meta[key] = live_meta[key]
    meta["resourceVersion"] = live_meta.get("resourceVersion")
    out = {**body, "metadata": meta}
    if "status" in live:
        # Without a status subresource a PUT would wipe what the object's controller reported.
        out["status"] = live["status"]
    return out


def uid(obj: Mapping[str, Any] | None) -> str:
    """The object's uid; empty for none."""
    return str(((obj or {}).get("metadata") or {}).get("uid") or "")
