"""A composite's deletion, in the order the fleet needs: the hub inventory entry goes first (so the
hub controllers withdraw the cluster's apps), then, once Maestro holds no work for the cluster, the
Maestro agent, the cluster's identities and consumer, what the provider runs for it, and last the
cluster itself. Each call takes the next step; ``Requeue`` until the last one is done."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from provisioner import api, compositions, render, xrd
from provisioner.providers.base import ClusterSpec, Phase
from provisioner.reconciler import identities, registration, status
from provisioner.reconciler.composites import render_composite
from provisioner.reconciler.context import Context, Requeue, meta, now

log = logging.getLogger(__name__)


async def delete_composite(ctx: Context, composite: Mapping[str, Any], definition: Mapping[str, Any]) -> None:
    """One step of the ordered deletion; ``Requeue`` until the last one is done."""
    name = xrd.cluster_name(composite)
    async with ctx.lock(name):
        policy = (composite.get("spec") or {}).get("deletionPolicy") or "Delete"
        await _delete_hub_objects(ctx, name)
        if policy == "Orphan":
            ctx.report(composite, "Normal", "Orphaned", f"cluster {name} and its workloads are left running")
            return
        resources = await _render_quietly(ctx, composite, definition)
        spec = render.cluster_spec(resources[0], name) if resources else ClusterSpec(name)
        recorded = ((composite.get("status") or {}).get("cluster") or {}).get("provider")
        provider = ctx.provider(
            str(recorded or (render.provider_name(resources[0]) if resources else "local"))
        )
        works = await registration.works_left(ctx.maestro, name)
        started = meta(composite).get("deletionTimestamp")
        waited = (now() - _parse_time(started)).total_seconds() if started else 0.0
        if works and provider.agent_alive(name) and waited < ctx.settings.drain_seconds:
            await status.deleting(
                ctx, composite, f"waiting for the agent to remove {works} work(s) from the cluster"
            )
            raise Requeue(f"{works} works left", ctx.settings.requeue_seconds)
        provider.stop_agent(name)
        if works:
            # The agent is gone: Maestro deletes the works itself once their grace period ends.
            await status.deleting(
                ctx,
                composite,
                f"{works} work(s) still in Maestro with no agent to remove them; they go when "
                "Maestro's orphan grace period ends (the server's --orphan-grace)",
            )
            raise Requeue(f"{works} orphaned works left", 10.0)
        await identities.revoke(ctx, name, resources)
        await registration.unregister(ctx.maestro, name)
        provider.stop_workloads(name)
        state = await provider.delete(spec)
        if state.phase is not Phase.DELETED:
            await status.deleting(ctx, composite, f"cluster {state.phase}: {state.message}")
            raise Requeue(f"cluster {name} {state.phase}", ctx.settings.requeue_seconds)
        await ctx.clusters.forget(name)
        ctx.report(composite, "Normal", "Deleted", f"cluster {name} deleted")


async def _render_quietly(
    ctx: Context, composite: Mapping[str, Any], definition: Mapping[str, Any]
) -> list[render.ComposedResource]:
    try:
        return (await render_composite(ctx, composite, definition))[1]
    except (compositions.CompositionError, render.RenderError) as exc:
        log.warning("composite %s: deleting with provider defaults: %s", meta(composite).get("name"), exc)
        return []


async def _delete_hub_objects(ctx: Context, name: str) -> None:
    selector = f"{api.LABEL_COMPOSITE_NAME}={name}"
    for secret in await ctx.list_objects("", "v1", "secrets", label_selector=selector):
        await ctx.hub.delete({"apiVersion": "v1", "kind": "Secret", "metadata": meta(secret)})


def _parse_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
