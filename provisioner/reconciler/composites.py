"""A composite's pass: pick its Composition and revision (``compositions``), run the revision's
pipeline (``composing``: its template and any other steps), make the cluster exist (the provider),
then apply each composed resource in the pipeline's order — ``workload`` objects into the new
cluster, ``hub`` objects on the management cluster, ``maestro`` consumers through the gRPC API,
``identity`` certificates from the platform CA — stopping at the first ``waitReady`` resource that
is not ready yet. A render, pipeline or provider failure becomes ``Synced=False`` with the reason
and touches nothing already provisioned."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import yaml

from kubeio import objects
from kubeio.errors import KubeError
from maestro import client_errors
from provisioner import api, compositions, render, xrd
from provisioner.providers.base import ClusterProvider, ClusterState, ProviderError, is_workload
from provisioner.reconciler import composing, identities, registration, status
from provisioner.reconciler.context import FIELD_MANAGER, Context, JsonObject, Requeue, meta

SECRET_KEY = "kubeconfig"


async def reconcile_composite(
    ctx: Context, composite: Mapping[str, Any], definition: Mapping[str, Any]
) -> None:
    name = xrd.cluster_name(composite)
    async with ctx.turn(name):
        found = status.Pass()
        try:
            done = await composing.compose(ctx, composite, definition)
        except (compositions.CompositionError, render.RenderError) as exc:
            reason = "RenderFailed" if isinstance(exc, render.RenderError) else "CompositionInvalid"
            reason = getattr(exc, "reason", reason)
            composite = await composing.record(ctx, composite, getattr(exc, "conditions", ()))
            await status.fail(ctx, composite, reason, str(exc))
            raise Requeue(str(exc), 30.0, failed=True) from exc
        composing.report(ctx, composite, done)
        composite = await composing.record(ctx, composite, done.conditions)
        revision, resources = done.revision, done.resources
        provider_resource = resources[0]
        spec = render.cluster_spec(provider_resource, name)
        provider_name = render.provider_name(provider_resource)
        try:
            provider = ctx.provider(provider_name)
            state = await provider.ensure(spec)
        except ProviderError as exc:
            await status.fail(ctx, composite, exc.reason, exc.message, revision=revision)
            raise Requeue(exc.message, 15.0 if exc.retryable else 120.0, failed=True) from exc
        found.cluster = {"provider": provider_name, "name": name, "phase": str(state.phase)}
        found.cluster["endpoint"] = state.endpoint
        found.cluster.update(state.details)
        found.resources.append(
            status.entry(provider_resource, state.ready, state.message or str(state.phase))
        )
        if not state.ready or state.kubeconfig is None:
            await status.progress(ctx, composite, found, revision, f"cluster {state.phase}: {state.message}")
            raise Requeue(f"cluster {name} is {state.phase}", ctx.settings.requeue_seconds)
        kubeconfig = state.kubeconfig

        async def worker() -> objects.Objects:
            # Reached on first use: a composition of hub objects alone never connects to the cluster.
            return await ctx.clusters.connect(name, kubeconfig, provider.cluster_objects(name))

        found.connection_secret = await _connection_secret(ctx, composite, state)
        waiting = ""
        for resource in resources[1:]:
            try:
                ready, message = await _apply(ctx, composite, provider, resource, worker)
            except (KubeError, client_errors.MaestroCallError, ValueError) as exc:
                message = status.error_text(exc)
                found.resources.append(status.entry(resource, False, message))
                await status.fail(
                    ctx, composite, "ApplyFailed", f"{resource.name}: {message}", revision, found
                )
                raise Requeue(message, 10.0, failed=True) from exc
            found.resources.append(status.entry(resource, ready, message))
            if not ready and resource.wait_ready:
                waiting = f"waiting for {resource.name}: {message}"
                break
        await _prune(ctx, composite, found, worker)
        if waiting:
            await status.progress(ctx, composite, found, revision, waiting)
            raise Requeue(waiting, ctx.settings.requeue_seconds)
        await status.write(ctx, composite, found, revision, synced=(True, "", ""), ready=(True, "", ""))


async def render_composite(
    ctx: Context, composite: Mapping[str, Any], definition: Mapping[str, Any]
) -> tuple[JsonObject, list[render.ComposedResource]]:
    """The composite's revision (bound to it if it was not) and what that revision composes for it."""
    done = await composing.compose(ctx, composite, definition)
    return done.revision, done.resources


async def _apply(
    ctx: Context,
    composite: Mapping[str, Any],
    provider: ClusterProvider,
    resource: render.ComposedResource,
    worker: Callable[[], Awaitable[objects.Objects]],
) -> tuple[bool, str]:
    name = xrd.cluster_name(composite)
    obj = dict(resource.object)
    if resource.target == "workload":
        cluster = await worker()
        applied = await cluster.apply(obj, field_manager=FIELD_MANAGER)
        if obj.get("kind") == "CustomResourceDefinition":
            await cluster.wait_established(str(meta(obj)["name"]))
            return True, "established"
        if is_workload(obj):
            return await provider.run_workload(name, cluster, applied)
        return True, "applied"
    if resource.target == "hub":
        obj["metadata"] = {
            **meta(obj),
            "labels": {**(meta(obj).get("labels") or {}), api.LABEL_COMPOSITE_NAME: name},
        }
        await ctx.hub.apply(obj, field_manager=FIELD_MANAGER)
        return True, "applied on the management cluster"
    if resource.target == "maestro":
        return await registration.register(ctx.maestro, str(obj.get("name") or name), obj.get("labels") or {})
    if resource.target == "identity":
        return await identities.ensure(ctx, composite, obj, await worker())
    raise ValueError(f"unknown target {resource.target!r}")


async def _connection_secret(
    ctx: Context, composite: Mapping[str, Any], state: ClusterState
) -> JsonObject | None:
    ref = (composite.get("spec") or {}).get("writeConnectionSecretToRef") or {}
    if not ref.get("name") or state.kubeconfig is None:
        return None
    secret: JsonObject = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": ref["name"],
            # a namespaced composite's own namespace; a claim's composite names the claim's
            "namespace": meta(composite).get("namespace") or ref.get("namespace") or "default",
            "labels": {api.LABEL_COMPOSITE_NAME: xrd.cluster_name(composite)},
        },
        "type": "Opaque",
        "data": {
            SECRET_KEY: base64.b64encode(yaml.safe_dump(state.kubeconfig).encode()).decode(),
            "server": base64.b64encode(state.endpoint.encode()).decode(),
        },
    }
    await ctx.hub.apply(secret, field_manager=FIELD_MANAGER)
    return {"name": ref["name"], "namespace": secret["metadata"]["namespace"]}


async def _prune(
    ctx: Context,
    composite: Mapping[str, Any],
    found: status.Pass,
    worker: Callable[[], Awaitable[objects.Objects]],
) -> None:
    """Delete what an earlier revision composed and this one no longer does."""
    now = {r["name"] for r in found.resources}
    for old in (composite.get("status") or {}).get("resources") or []:
        if old.get("name") in now or old.get("target") not in ("workload", "hub"):
            continue
        ref = {
            "apiVersion": old.get("apiVersion"),
            "kind": old.get("kind"),
            "metadata": {"name": old.get("objectName"), "namespace": old.get("namespace")},
        }
        await (await worker() if old["target"] == "workload" else ctx.hub).delete(ref)
        ctx.report(composite, "Normal", "Pruned", f"{old['name']} is no longer composed: deleted")
