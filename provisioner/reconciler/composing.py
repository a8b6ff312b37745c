"""A composite's revision run through its pipeline (``provisioner.pipeline``), and what the pipeline
says written onto the composite: the ``Pipeline`` condition, the steps' own conditions, and an
event per result when the results changed. A ``mode: Template`` revision is a one-step pipeline and
adds no condition."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubeio import conditions as kube_conditions
from provisioner import api, compositions, pipeline, render, xrd
from provisioner.reconciler.context import Context, JsonObject, generation, meta, now


@dataclass
class Composed:
    revision: JsonObject
    resources: list[render.ComposedResource]
    #: the composite's conditions the pipeline sets (empty for ``mode: Template``)
    conditions: list[dict[str, str]] = field(default_factory=list)
    results: list[pipeline.StepResult] = field(default_factory=list)


async def compose(ctx: Context, composite: Mapping[str, Any], definition: Mapping[str, Any]) -> Composed:
    """The composite's revision (bound to it if it was not) and what its pipeline composes for it.
    A fatal result is a ``pipeline.FatalResult`` carrying the conditions to write (``record``)."""
    all_compositions = await ctx.recent_objects(api.GROUP, api.VERSION, "compositions")
    default = ((definition.get("spec") or {}).get("defaultCompositionRef") or {}).get("name") or ""
    composition = compositions.select_composition(composite, all_compositions, default)
    revisions = await ctx.recent_objects(api.GROUP, api.VERSION, "compositionrevisions")
    bound = {
        **composite,
        "spec": {**(composite.get("spec") or {}), "compositionRef": {"name": meta(composition)["name"]}},
    }
    revision = compositions.resolve_revision(bound, revisions)
    patch = compositions.binding_patch(composite, composition, revision)
    if patch:
        bound_now = await ctx.merge_patch(composite, patch)
        # This pass composes the revision it just bound: the spec change needs no pass of its own.
        ctx.bound_generations[xrd.cluster_name(composite)] = generation(bound_now)
    rev_spec = dict(revision.get("spec") or {})
    if not rev_spec.get("pipeline"):
        template = dict(rev_spec.get("template") or {})
        template.setdefault("source", f"CompositionRevision/{meta(revision)['name']}")
        rev_spec["template"] = template
    steps = pipeline.steps(rev_spec)
    pipeline.check_installed(steps, ctx.settings.functions, rev_spec)
    values = render.composite_values(composite, None, rev_spec.get("defaults") or {}, ctx.settings.platform)
    observed = {
        str(r["name"]): r for r in (composite.get("status") or {}).get("resources") or [] if r.get("name")
    }
    is_pipeline = pipeline.mode(rev_spec) == pipeline.PIPELINE_MODE
    outcome = await pipeline.run(
        steps, ctx.settings.functions, values=values, composite=composite, observed=observed
    )
    conds = pipeline.conditions(outcome) if is_pipeline else []
    return Composed(revision, outcome.resources, conds, outcome.results)


async def record(
    ctx: Context, composite: Mapping[str, Any], conds: Sequence[Mapping[str, str]]
) -> dict[str, Any]:
    """Write ``conds`` into the composite's status when they changed; the composite as it is then."""
    if not conds:
        return dict(composite)
    status = dict(composite.get("status") or {})
    current: list[dict[str, Any]] = [dict(c) for c in status.get("conditions") or []]
    stamp = kube_conditions.timestamp(now())
    updated = current
    for c in conds:
        updated = kube_conditions.set_condition(
            updated,
            c["type"],
            c["status"],  # type: ignore[arg-type]
            c["reason"],
            c.get("message", ""),
            stamp=stamp,
            generation=generation(composite),
        )
    if updated == current:
        return dict(composite)
    await ctx.hub.patch_status(composite, {"status": {"conditions": updated}})
    return {**composite, "status": {**status, "conditions": updated}}


def report(ctx: Context, composite: Mapping[str, Any], composed: Composed) -> None:
    """An event per result, when the ``Pipeline`` condition's message changed (not on every pass)."""
    if not composed.conditions:
        return
    before = kube_conditions.find(kube_conditions.of(composite), pipeline.CONDITION) or {}
    if before.get("message") == composed.conditions[0]["message"]:
        return
    for r in composed.results:
        kind = "Normal" if r.result.severity == "Normal" else "Warning"
        ctx.report(
            composite, kind, r.result.reason or r.result.severity, f"step {r.step}: {r.result.message}"
        )
