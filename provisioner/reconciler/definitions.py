"""Definitions and Compositions: serve a definition's composite and claim kinds; cut a Composition's
revisions and prune those no composite uses."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisioner import api, catalog, compositions, pipeline, xrd
from provisioner.reconciler import status
from provisioner.reconciler.context import FIELD_MANAGER, Context, generation, kind_path, meta


async def reconcile_definition(ctx: Context, definition: Mapping[str, Any]) -> list[str]:
    """Serve the definition's composite and claim kinds; returns the CRD names."""
    try:
        crds = xrd.generated_crds(definition)
    except xrd.DefinitionError as exc:
        await status.set_conditions(ctx, definition, ok=False, reason="InvalidDefinition", message=str(exc))
        ctx.report(definition, "Warning", "InvalidDefinition", str(exc))
        raise
    for crd in crds:
        await ctx.hub.apply(crd, field_manager=FIELD_MANAGER)
    for crd in crds:
        await ctx.hub.wait_established(crd["metadata"]["name"])
    names = [c["metadata"]["name"] for c in crds]
    if ctx.kinds_served is not None:
        await ctx.kinds_served(names)
    await status.set_conditions(ctx, definition, ok=True, ready=True, message="serving " + ", ".join(names))
    ctx.forget_recent()
    return names


async def reconcile_composition(ctx: Context, composition: Mapping[str, Any]) -> str:
    """Cut a revision when the template (or pipeline) or defaults changed; returns the latest
    revision's name. A pipeline naming a function that is not installed is refused."""
    spec = composition.get("spec") or {}
    try:
        frozen = pipeline.freeze(composition, ctx.settings.compositions_dir)
        pipeline.check_installed(pipeline.steps(spec), ctx.settings.functions, spec)
        text = "" if frozen is not None else catalog.template_text(composition, ctx.settings.compositions_dir)
    except (compositions.CompositionError, catalog.CatalogError) as exc:
        await status.set_conditions(ctx, composition, ok=False, reason="InvalidComposition", message=str(exc))
        ctx.report(composition, "Warning", "InvalidComposition", str(exc))
        raise
    revisions = await ctx.list_objects(api.GROUP, api.VERSION, "compositionrevisions")
    new = compositions.next_revision(composition, text, revisions, frozen)
    if new is not None:
        await ctx.hub.apply(new, field_manager=FIELD_MANAGER)
        ctx.report(composition, "Normal", "RevisionCreated", f"revision {new['metadata']['name']}")
        revisions.append(new)
    # Set again after every change, not only the first: Argo CD's health of a Composition waits
    # for a Synced condition that observed its current generation.
    observed = generation(composition)
    if not any(
        c.get("type") == "Synced" and c.get("status") == "True" and c.get("observedGeneration") == observed
        for c in _conditions(composition)
    ):
        await status.set_conditions(ctx, composition, ok=True)
    own = compositions.revisions_of(str(meta(composition).get("name")), revisions)
    for old in compositions.prunable_revisions(composition, revisions, await _revisions_in_use(ctx)):
        await ctx.hub.delete(old)
    ctx.forget_recent()  # the composition, and perhaps its revisions, changed
    return str(own[-1]["metadata"]["name"])


async def _revisions_in_use(ctx: Context) -> set[str]:
    in_use: set[str] = set()
    for definition in await ctx.list_objects(api.GROUP, api.VERSION, "compositeresourcedefinitions"):
        for composite in await ctx.list_objects(*kind_path(definition, claim=False)):
            name = (composite.get("status") or {}).get("compositionRevision")
            if name:
                in_use.add(str(name))
    return in_use


def _conditions(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list((obj.get("status") or {}).get("conditions") or [])
