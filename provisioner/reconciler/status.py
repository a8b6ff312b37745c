"""What the reconciler writes into status: a composite's conditions, composed resources, cluster and
connection Secret; a definition's conditions; a refused claim's ``Synced=False``. A status that
would not change is not written."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubeio.errors import ClusterUnavailableError
from maestro import client_errors
from provisioner import api, conditions, render
from provisioner import labels as label_rules
from provisioner.reconciler.context import Context, JsonObject, generation, meta, now


@dataclass
class Pass:
    """What one composite pass found, for its status."""

    resources: list[JsonObject] = field(default_factory=list)
    cluster: JsonObject = field(default_factory=dict)
    connection_secret: JsonObject | None = None


async def fail(
    ctx: Context,
    composite: Mapping[str, Any],
    reason: str,
    message: str,
    revision: Mapping[str, Any] | None = None,
    found: Pass | None = None,
) -> None:
    ctx.report(composite, "Warning", reason, message)
    await write(ctx, composite, found, revision, synced=(False, reason, message), ready=None)


async def progress(
    ctx: Context, composite: Mapping[str, Any], found: Pass, revision: Mapping[str, Any], message: str
) -> None:
    await write(
        ctx, composite, found, revision, synced=(True, "", ""), ready=(False, conditions.CREATING, message)
    )


async def deleting(ctx: Context, composite: Mapping[str, Any], message: str) -> None:
    await write(ctx, composite, None, None, synced=None, ready=(False, conditions.DELETING, message))


async def write(
    ctx: Context,
    composite: Mapping[str, Any],
    found: Pass | None,
    revision: Mapping[str, Any] | None,
    *,
    synced: tuple[bool, str, str] | None,
    ready: tuple[bool, str, str] | None,
) -> None:
    current = dict(composite.get("status") or {})
    conds = current.get("conditions") or []
    gen, at = generation(composite), now()
    if synced is not None:
        conds = conditions.synced(
            conds, ok=synced[0], reason=synced[1], message=synced[2], generation=gen, now=at
        )
    if ready is not None:
        conds = conditions.ready(
            conds, status=ready[0], reason=ready[1], message=ready[2], generation=gen, now=at
        )
    status: JsonObject = {"conditions": conds}
    if found is not None:
        status["resources"] = found.resources
        if found.cluster:
            status["cluster"] = found.cluster
        if found.connection_secret:
            status["connectionSecret"] = found.connection_secret
    if revision is not None:
        status["compositionRevision"] = str(meta(revision)["name"])
    if {**current, **status} != current:
        await ctx.hub.patch_status(composite, {"status": status})


async def set_conditions(
    ctx: Context,
    obj: Mapping[str, Any],
    *,
    ok: bool,
    ready: bool | None = None,
    reason: str = "",
    message: str = "",
) -> None:
    gen, at = generation(obj), now()
    conds = conditions.synced(
        (obj.get("status") or {}).get("conditions"),
        ok=ok,
        reason=reason,
        message=message,
        generation=gen,
        now=at,
    )
    if ready is not None:
        conds = conditions.ready(conds, status=ready, message=message, generation=gen, now=at)
    await ctx.hub.patch_status(obj, {"status": {"conditions": conds}})


def refused_conditions(claim: Mapping[str, Any], current: Any, message: str) -> list[JsonObject]:
    return conditions.synced(
        current, ok=False, reason=label_rules.REASON, message=message, generation=generation(claim), now=now()
    )


def entry(resource: render.ComposedResource, ready: bool, message: str) -> JsonObject:
    """A composed resource as ``status.resources`` lists it."""
    obj = resource.object
    obj_meta = obj.get("metadata") or {}
    out: JsonObject = {
        "name": resource.name,
        "target": resource.target,
        "apiVersion": str(obj.get("apiVersion") or api.API_VERSION),
        "kind": str(obj.get("kind") or ""),
        "ready": ready,
        "message": message[:500],
    }
    if obj_meta.get("name"):
        out["objectName"] = str(obj_meta["name"])
    if obj_meta.get("namespace"):
        out["namespace"] = str(obj_meta["namespace"])
    return out


def error_text(exc: BaseException) -> str:
    if isinstance(exc, client_errors.MaestroCallError):
        return f"Maestro: {exc}"
    if isinstance(exc, ClusterUnavailableError):
        return f"the cluster did not answer: {exc}"
    return str(exc)
