"""A composite's deletion, in the order the fleet needs, one step per call (``Requeue`` until the
last one is done):

1. the hub inventory entry, so the hub controllers withdraw the cluster's apps;
2. the works Maestro holds for the cluster, each deleted through Maestro while the agent runs, until
   the agent has confirmed every one (or, with no agent, Maestro's grace period has dropped them:
   an Event names them); then the Argo CD Applications the composition made, which Argo CD deletes
   with what they deployed;
3. the Maestro agent, the cluster's identities and its Maestro consumer;
4. Argo CD and whatever else the provider runs for the cluster;
5. the cluster itself.

``deletionPolicy: Orphan`` removes nothing: the cluster keeps running and its inventory entry is
marked orphaned (``orphans``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from provisioner import api, compositions, render, xrd
from provisioner.providers.base import ClusterProvider, ClusterSpec, Phase
from provisioner.reconciler import drain, identities, orphans, registration, status
from provisioner.reconciler.composites import render_composite
from provisioner.reconciler.context import Context, Requeue, meta, now

log = logging.getLogger(__name__)


async def delete_composite(ctx: Context, composite: Mapping[str, Any], definition: Mapping[str, Any]) -> None:
    """One step of the ordered deletion; ``Requeue`` until the last one is done."""
    name = xrd.cluster_name(composite)
    async with ctx.turn(name):
        policy = (composite.get("spec") or {}).get("deletionPolicy") or "Delete"
        if policy == "Orphan":
            await orphans.keep(ctx, composite, name)
            await ctx.clusters.forget(name)
            ctx.bound_generations.pop(name, None)
            return
        await _delete_hub_objects(ctx, name)
        resources = await _render_quietly(ctx, composite, definition)
        spec = render.cluster_spec(resources[0], name) if resources else ClusterSpec(name)
        recorded = ((composite.get("status") or {}).get("cluster") or {}).get("provider")
        provider = ctx.provider(
            str(recorded or (render.provider_name(resources[0]) if resources else "local"))
        )
        await _drain(ctx, composite, name, provider, resources)
        provider.stop_agent(name)
        await identities.revoke(ctx, name, resources)
        await registration.unregister(ctx.maestro, name)
        provider.stop_workloads(name)
        state = await provider.delete(spec)
        if state.phase is not Phase.DELETED:
            await status.deleting(ctx, composite, f"cluster {state.phase}: {state.message}")
            raise Requeue(f"cluster {name} {state.phase}", ctx.settings.requeue_seconds)
        await ctx.clusters.forget(name)
        ctx.bound_generations.pop(name, None)
        await orphans.tell_works(ctx, composite, name)
        ctx.report(composite, "Normal", "Deleted", f"cluster {name} deleted")


async def _drain(
    ctx: Context,
    composite: Mapping[str, Any],
    name: str,
    provider: ClusterProvider,
    resources: list[render.ComposedResource],
) -> None:
    """Works, then Applications, off the cluster while its agent and Argo CD still run; ``Requeue``
    while some are left."""
    works = await registration.works(ctx.maestro, name)
    await registration.withdraw(ctx.maestro, works)
    started = meta(composite).get("deletionTimestamp")
    waited = (now() - _parse_time(started)).total_seconds() if started else 0.0
    draining = waited < ctx.settings.drain_seconds
    if works and provider.agent_alive(name) and draining:
        await status.deleting(
            ctx, composite, f"waiting for the agent to remove {len(works)} work(s) from the cluster"
        )
        raise Requeue(f"{len(works)} works left", ctx.settings.requeue_seconds)
    if works:
        # No agent (or it did not finish within --drain): Maestro drops the works once its grace
        # period for an unconfirmed delete ends; the agent goes now, it would only race that.
        provider.stop_agent(name)
        await orphans.note_works(ctx, composite, works)
        await status.deleting(
            ctx,
            composite,
            f"{len(works)} work(s) still in Maestro with no agent to remove them "
            f"({orphans.describe_works(works)}); they go when Maestro's grace period for unconfirmed "
            "deletes ends (the server's --deletion-grace)",
        )
        raise Requeue(f"{len(works)} orphaned works left", 10.0)
    applications = await drain.applications_left(ctx, name, resources)
    if applications and draining:
        await status.deleting(
            ctx,
            composite,
            f"waiting for Argo CD to delete Applications {', '.join(applications)} and what they deployed",
        )
        raise Requeue(f"{len(applications)} Applications left", ctx.settings.requeue_seconds)


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
