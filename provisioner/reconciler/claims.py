"""Claims: bound to their composite (created or updated from the claim), showing its status, and
deleted by deleting it. A claim setting labels only the platform sets is refused."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisioner import labels as label_rules
from provisioner import xrd
from provisioner.reconciler import status
from provisioner.reconciler.context import FIELD_MANAGER, Context, Requeue, kind_path, meta


async def reconcile_claim(ctx: Context, claim: Mapping[str, Any], definition: Mapping[str, Any]) -> None:
    """Bind the claim to its composite (created or updated from the claim) and copy its status.

    A claim that sets labels only the platform sets is refused (``Synced=False``, reason
    ``ReservedLabel``, naming the keys) and its composite is left as it was."""
    refused = label_rules.claim_refusal(claim)
    if refused is not None:
        ctx.report(claim, "Warning", label_rules.REASON, refused)
        await _refuse(ctx, claim, refused)
        return
    wanted = xrd.composite_from_claim(claim, definition)
    group, version, _ = kind_path(definition, claim=False)
    wanted["apiVersion"] = f"{group}/{version}"
    composite = await ctx.hub.apply(wanted, field_manager=FIELD_MANAGER)
    if (claim.get("spec") or {}).get("resourceRef") != xrd.resource_ref(composite):
        await ctx.merge_patch(claim, {"spec": {"resourceRef": xrd.resource_ref(composite)}})
    await _copy_status(ctx, claim, composite)


async def composite_changed(ctx: Context, composite: Mapping[str, Any]) -> None:
    """Carry a composite's status to its claim (a claim shows what its cluster is doing)."""
    ref = (composite.get("spec") or {}).get("claimRef") or {}
    if not ref.get("name") or meta(composite).get("deletionTimestamp"):
        return
    claim = await ctx.hub.get({**ref, "metadata": {"name": ref["name"], "namespace": ref.get("namespace")}})
    if claim is not None and not meta(claim).get("deletionTimestamp"):
        await _copy_status(ctx, claim, composite)


async def delete_claim(ctx: Context, claim: Mapping[str, Any], definition: Mapping[str, Any]) -> None:
    """Delete the claim's composite and wait until it is gone (its own deletion runs first)."""
    group, version, _ = kind_path(definition, claim=False)
    name = ((claim.get("spec") or {}).get("resourceRef") or {}).get("name") or xrd.claim_to_composite_name(
        claim
    )
    ref = {"apiVersion": f"{group}/{version}", "kind": definition["spec"]["names"]["kind"]}
    composite = await ctx.hub.get({**ref, "metadata": {"name": name}})
    if composite is None:
        return
    if not meta(composite).get("deletionTimestamp"):
        await ctx.hub.delete(composite)
    await ctx.hub.patch_status(claim, {"status": xrd.claim_status(claim, composite)})
    raise Requeue(f"waiting for composite {name} to be deleted", ctx.settings.requeue_seconds)


async def _copy_status(ctx: Context, claim: Mapping[str, Any], composite: Mapping[str, Any]) -> None:
    claim_status = xrd.claim_status(claim, composite)
    refused = label_rules.claim_refusal(claim)
    if refused is not None:
        # The composite is still the one of the claim's last accepted spec: its Synced is not the
        # claim's.
        claim_status["conditions"] = status.refused_conditions(claim, claim_status.get("conditions"), refused)
    if claim_status != (claim.get("status") or {}):
        await ctx.hub.patch_status(claim, {"status": claim_status})


async def _refuse(ctx: Context, claim: Mapping[str, Any], message: str) -> None:
    ref = (claim.get("spec") or {}).get("resourceRef") or {}
    composite = None
    if ref.get("name"):
        composite = await ctx.hub.get({**ref, "metadata": {"name": ref["name"]}})
    if composite is not None:
        await _copy_status(ctx, claim, composite)
        return
    current = claim.get("status") or {}
    conds = status.refused_conditions(claim, current.get("conditions"), message)
    if conds != current.get("conditions"):
        await ctx.hub.patch_status(claim, {"status": {"conditions": conds}})
