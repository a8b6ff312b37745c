"""What a deletion leaves behind, said where the team looks: ``deletionPolicy: Orphan`` keeps the
cluster and marks its inventory entry orphaned; a deletion that went on without the cluster's agent
names the works whose objects nobody removed. Both are told by the composite's last condition and
a Kubernetes Event in the claim's namespace (the composite's own, for a composite with no claim)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from maestro.api import bundles
from provisioner import api
from provisioner.reconciler import status
from provisioner.reconciler.context import Context, JsonObject, meta

#: a kept inventory entry's label (``true``): its composite is gone, its cluster still runs
ORPHANED_LABEL = "fleetplane.io/orphaned"
#: on the composite while it is deleted: the works it found with no agent to remove them
ORPHANED_WORKS = "fleetplane.io/orphaned-works"
REASON = "Orphaned"


def event_target(composite: Mapping[str, Any]) -> JsonObject:
    """The object an Event about the composite's deletion is about: its claim, else itself."""
    ref = (composite.get("spec") or {}).get("claimRef") or {}
    if ref.get("name") and ref.get("namespace"):
        return {
            "apiVersion": ref.get("apiVersion"),
            "kind": ref.get("kind"),
            "metadata": {"name": ref["name"], "namespace": ref["namespace"]},
        }
    return dict(composite)


async def keep(ctx: Context, composite: Mapping[str, Any], name: str) -> None:
    """``deletionPolicy: Orphan``: the cluster, its workloads, agent and Maestro consumer stay; its
    inventory entries stay too, marked orphaned."""
    kept = [f"cluster {name}"]
    cluster = (composite.get("status") or {}).get("cluster") or {}
    runs_on = [str(cluster[k]) for k in ("provider", "endpoint") if cluster.get(k)]
    if runs_on:
        kept[0] += f" ({', '.join(runs_on)})"
    kept.append("its Argo CD and Maestro agent")
    kept.append(f"its Maestro consumer {name}")
    selector = f"{api.LABEL_COMPOSITE_NAME}={name}"
    for secret in await ctx.list_objects("", "v1", "secrets", label_selector=selector):
        where = f"{meta(secret).get('namespace')}/{meta(secret).get('name')}"
        if not _is_inventory(secret):
            kept.append(f"connection secret {where}")
            continue
        ref = {"apiVersion": "v1", "kind": "Secret", "metadata": meta(secret)}  # a listed item names neither
        await ctx.merge_patch(ref, {"metadata": {"labels": {ORPHANED_LABEL: "true"}}})
        kept.append(f"inventory entry {where} (labelled {ORPHANED_LABEL}=true)")
    message = "deletionPolicy Orphan: kept " + "; ".join(kept)
    await tell(ctx, composite, message)


def describe_works(records: Sequence[bundles.BundleRecord]) -> str:
    return ", ".join(f"{r.bundle.id} (source {r.bundle.source})" for r in records)


async def note_works(
    ctx: Context, composite: Mapping[str, Any], records: Sequence[bundles.BundleRecord]
) -> None:
    """Remember, on the composite, the works found with no agent to remove them (a restart of the
    provisioner still names them once they are gone)."""
    noted = (meta(composite).get("annotations") or {}).get(ORPHANED_WORKS) or ""
    wanted = describe_works(records)
    if wanted and wanted != noted:
        await ctx.merge_patch(composite, {"metadata": {"annotations": {ORPHANED_WORKS: wanted}}})


async def tell_works(ctx: Context, composite: Mapping[str, Any], name: str) -> None:
    """Say which works went without their agent, once the deletion goes on without them."""
    current = await ctx.hub.get(composite) or composite  # the note was written by an earlier step
    noted = (meta(current).get("annotations") or {}).get(ORPHANED_WORKS)
    if noted:
        await tell(
            ctx,
            composite,
            f"cluster {name} was deleted without its Maestro agent: works {noted} were dropped by "
            "Maestro when its grace period ran out; what they applied was never removed from the cluster",
        )


async def tell(ctx: Context, composite: Mapping[str, Any], message: str) -> None:
    await status.write(ctx, composite, None, None, synced=None, ready=(False, REASON, message))
    ctx.report(event_target(composite), "Normal", REASON, message)
    ctx.report(composite, "Normal", REASON, message)


def _is_inventory(secret: Mapping[str, Any]) -> bool:
    return (meta(secret).get("labels") or {}).get("argocd.argoproj.io/secret-type") == "cluster"
