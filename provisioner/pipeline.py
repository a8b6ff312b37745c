"""A Composition as a pipeline of steps, each a composition function (see ``functions``).

``mode: Template`` (the default) is a pipeline of one step, the built-in ``fleetplane-template``
function with the Composition's ``spec.template``. ``mode: Pipeline`` lists the steps in
``spec.pipeline``::

    pipeline:
      - step: render                              # unique in the pipeline, a DNS label
        functionRef: {name: fleetplane-template}  # a function installed with the platform
        input: {template: {path: worker-cluster/template.yaml.j2}}
      - step: size-policy
        functionRef: {name: size-policy}
        input: {maxNodeCount: 3}                  # free-form: the function's own schema

A revision freezes the pipeline with every template step's text inline (:func:`freeze`), so editing
a template file cuts a new revision as it does for ``mode: Template``. :func:`run` calls the steps
in order: each sees the observed state and what the steps before it composed, and may replace it;
a ``Fatal`` result stops the pipeline (:class:`FatalResult`) and nothing is applied. The composed
resources are checked as a template's output is, after every step and as a whole at the end.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from provisioner import catalog, composed, compositions, functions
from provisioner.composed import ComposedResource, RenderError
from provisioner.compositions import CompositionError

TEMPLATE_MODE = "Template"
PIPELINE_MODE = "Pipeline"
MODES = (TEMPLATE_MODE, PIPELINE_MODE)
#: the condition that sums up a pipeline's results on the composite
CONDITION = "Pipeline"
RESERVED_CONDITIONS = ("Synced", "Ready", CONDITION)
STEP_KEYS = ("step", "functionRef", "input")

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_MESSAGE_MAX = 1000


class Installed(Protocol):
    """The functions installed with the platform, by name."""

    def get(self, name: str) -> functions.Function | None: ...

    def names(self) -> list[str]: ...


@dataclass(frozen=True)
class StepResult:
    step: str
    function: str
    result: functions.Result


@dataclass
class Outcome:
    resources: list[ComposedResource]
    results: list[StepResult] = field(default_factory=list)
    conditions: list[functions.Condition] = field(default_factory=list)


class FunctionFailed(RenderError):
    """A step's function could not be called, raised, or answered something the provisioner cannot use."""

    reason = "FunctionFailed"

    def __init__(self, step: str, function: str, message: str) -> None:
        super().__init__(f"pipeline step {step!r} (function {function!r})", None, message)


class FatalResult(RenderError):
    """A step returned a ``Fatal`` result: the pipeline stopped and nothing was applied."""

    reason = "FatalResult"

    def __init__(self, fatal: StepResult, outcome: Outcome) -> None:
        super().__init__(
            f"pipeline step {fatal.step!r} (function {fatal.function!r})", None, fatal.result.message
        )
        self.fatal = fatal
        self.outcome = outcome
        #: the composite's conditions that say so
        self.conditions = conditions(outcome, fatal)


def mode(spec: Mapping[str, Any]) -> str:
    value = spec.get("mode") or TEMPLATE_MODE
    if value not in MODES:
        raise CompositionError(
            "spec.mode",
            f"is {value!r}",
            f"use {PIPELINE_MODE} (spec.pipeline lists the steps) or {TEMPLATE_MODE} (spec.template alone)",
        )
    return str(value)


def steps(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The steps of a Composition's (or a revision's) spec, checked; ``mode: Template`` is one step."""
    if mode(spec) == TEMPLATE_MODE:
        if spec.get("pipeline"):
            raise CompositionError(
                "spec.pipeline", "is set but spec.mode is not Pipeline", "set spec.mode: Pipeline"
            )
        return [
            {
                "step": "template",
                "functionRef": {"name": functions.TEMPLATE},
                "input": {"template": spec.get("template") or {}},
            }
        ]
    if spec.get("template"):
        raise CompositionError(
            "spec.template",
            "is set on a Pipeline Composition",
            f"move it into a step: {{step: render, functionRef: {{name: {functions.TEMPLATE}}}, "
            "input: {template: ...}}",
        )
    listed = spec.get("pipeline")
    if not isinstance(listed, list) or not listed:
        raise CompositionError(
            "spec.pipeline",
            "is missing or empty",
            f"list the steps, e.g. [{{step: render, functionRef: {{name: {functions.TEMPLATE}}}, "
            "input: {template: {path: worker-cluster/template.yaml.j2}}}]",
        )
    out: list[dict[str, Any]] = []
    for i, step in enumerate(listed):
        checked = _step(step, f"spec.pipeline[{i}]")
        if any(o["step"] == checked["step"] for o in out):
            raise CompositionError(
                f"spec.pipeline[{i}].step",
                f"{checked['step']!r} is used by an earlier step",
                "name each step once",
            )
        out.append(checked)
    return out


def _step(step: Any, where: str) -> dict[str, Any]:
    if not isinstance(step, Mapping):
        raise CompositionError(
            where, f"is a {type(step).__name__}", "write a mapping of step, functionRef, input"
        )
    unknown = sorted(set(step) - set(STEP_KEYS))
    if unknown:
        raise CompositionError(
            f"{where}.{unknown[0]}", "is not a field of a step", f"a step has only {', '.join(STEP_KEYS)}"
        )
    name = step.get("step")
    if not isinstance(name, str) or not _DNS_LABEL.match(name) or len(name) > 63:
        raise CompositionError(
            f"{where}.step", f"is {name!r}", "name the step with lower case letters, digits and '-'"
        )
    ref = step.get("functionRef")
    function = ref.get("name") if isinstance(ref, Mapping) else None
    if not isinstance(function, str) or not function:
        raise CompositionError(
            f"{where}.functionRef.name", "is missing", "name a function installed with the platform"
        )
    given = step.get("input")
    if given is not None and not isinstance(given, Mapping):
        raise CompositionError(f"{where}.input", f"is a {type(given).__name__}", "write a mapping")
    return {"step": name, "functionRef": {"name": function}, "input": copy.deepcopy(dict(given or {}))}


def check_installed(
    listed: Sequence[Mapping[str, Any]], installed: Installed, spec: Mapping[str, Any]
) -> None:
    """Every step's function is installed, else an error naming the step's field and the fix."""
    for i, step in enumerate(listed):
        name = step["functionRef"]["name"]
        if installed.get(name) is None:
            field_name = (
                f"spec.pipeline[{i}].functionRef.name" if mode(spec) == PIPELINE_MODE else "spec.template"
            )
            raise CompositionError(
                field_name,
                f"function {name!r} is not installed",
                f"use one of {', '.join(installed.names())}, or install it with the platform (a Python "
                f"entry point in the {functions.ENTRY_POINT_GROUP!r} group, or a function server given "
                "to the provisioner with --function NAME=ADDRESS)",
            )


def freeze(composition: Mapping[str, Any], root: Path) -> list[dict[str, Any]] | None:
    """The pipeline a revision keeps: ``None`` for ``mode: Template`` (its template is kept as before);
    else the steps with each template step's ``path`` read into ``inline`` (with its ``source``)."""
    spec = composition.get("spec") or {}
    listed = steps(spec)
    if mode(spec) == TEMPLATE_MODE:
        return None
    for i, step in enumerate(listed):
        if step["functionRef"]["name"] != functions.TEMPLATE:
            continue
        template = step["input"].get("template")
        if not isinstance(template, Mapping) or bool(template.get("path")) == bool(template.get("inline")):
            raise CompositionError(
                f"spec.pipeline[{i}].input.template",
                "needs exactly one of path or inline",
                "set path (a file under compositions/, e.g. worker-cluster/template.yaml.j2) or inline",
            )
        one = {"metadata": composition.get("metadata") or {}, "spec": {"template": template}}
        try:
            text = catalog.template_text(one, root)
        except catalog.CatalogError as exc:
            # the catalog names a Composition's own template field: name the step's instead
            field_name = f"spec.pipeline[{i}].input.template"
            raise catalog.CatalogError(str(exc).replace("spec.template", field_name)) from None
        source = f"compositions/{template['path']}" if template.get("path") else f"step {step['step']}"
        step["input"]["template"] = {"inline": text, "source": source}
    return listed


def frozen_steps(composition: Mapping[str, Any], root: Path) -> list[dict[str, Any]]:
    """The steps to run for a Composition as it is now (``fleetplane render``), templates read."""
    frozen = freeze(composition, root)
    if frozen is not None:
        return frozen
    text = catalog.template_text(composition, root)
    source = compositions.template_source(composition)
    return steps({"template": {"inline": text, "source": source}})


async def run(
    listed: Sequence[Mapping[str, Any]],
    installed: Installed,
    *,
    values: Mapping[str, Any],
    composite: Mapping[str, Any],
    observed: Mapping[str, Mapping[str, Any]],
) -> Outcome:
    """Call the steps in order; the composed resources of the last one, checked, with every result."""
    outcome = Outcome(resources=[])
    context: dict[str, Any] = {}
    conditions: dict[str, functions.Condition] = {}
    for step in listed:
        name, function_name = str(step["step"]), str(step["functionRef"]["name"])
        function = installed.get(function_name)
        if function is None:
            raise FunctionFailed(
                name, function_name, f"is not installed (installed: {', '.join(installed.names())})"
            )
        request = functions.Request(
            step=name,
            input=copy.deepcopy(dict(step.get("input") or {})),
            composite=copy.deepcopy(dict(composite)),
            observed={k: dict(v) for k, v in observed.items()},
            desired=list(outcome.resources),
            context=copy.deepcopy(context),
            values=dict(values),
        )
        response = await _call(function, request, name, function_name)
        for result in response.results:
            outcome.results.append(StepResult(name, function_name, result))
        for condition in response.conditions:
            if condition.type in RESERVED_CONDITIONS:
                raise FunctionFailed(
                    name,
                    function_name,
                    f"set condition {condition.type!r}, which the provisioner sets itself",
                )
            conditions[condition.type] = condition
        outcome.conditions = list(conditions.values())
        fatal = next((r for r in outcome.results if r.result.severity == "Fatal"), None)
        if fatal is not None:
            raise FatalResult(fatal, outcome)
        if response.desired is not None:
            outcome.resources = composed.check(
                list(response.desired), f"pipeline step {name!r} ({function_name})", whole=False
            )
        if response.context is not None:
            context = dict(response.context)
    outcome.resources = composed.check(outcome.resources, "the pipeline's composed resources")
    return outcome


async def _call(
    function: functions.Function, request: functions.Request, step: str, name: str
) -> functions.Response:
    try:
        if inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(type(function).__call__):
            response = await function(request)  # type: ignore[misc]
        else:
            response = await asyncio.to_thread(function, request)
            if inspect.isawaitable(response):
                response = await response
    except (RenderError, CompositionError):
        raise
    except functions.FunctionError as exc:
        raise FunctionFailed(step, name, str(exc)) from None
    except Exception as exc:  # a function is code of its own: any failure is that step's
        raise FunctionFailed(step, name, f"{type(exc).__name__}: {exc}") from None
    if not isinstance(response, functions.Response):
        raise FunctionFailed(step, name, f"returned {type(response).__name__}, not a functions.Response")
    for result in response.results:
        if result.severity not in functions.SEVERITIES:
            raise FunctionFailed(
                step,
                name,
                f"returned a result of severity {result.severity!r}, "
                f"not one of {', '.join(functions.SEVERITIES)}",
            )
    return response


def conditions(outcome: Outcome, fatal: StepResult | None = None) -> list[dict[str, str]]:
    """The composite's ``Pipeline`` condition (its results, summed up) and the steps' own conditions,
    as ``{type, status, reason, message}``."""
    notes = [r for r in outcome.results if r.result.severity != "Normal"] or outcome.results
    message = "; ".join(f"{r.step}: {r.result.message}" for r in notes)[:_MESSAGE_MAX]
    if fatal is not None:
        summary = {
            "status": "False",
            "reason": "Fatal",
            "message": f"{fatal.step}: {fatal.result.message}"[:_MESSAGE_MAX],
        }
    elif any(r.result.severity == "Warning" for r in outcome.results):
        summary = {"status": "False", "reason": "Warning", "message": message}
    else:
        summary = {"status": "True", "reason": "Normal", "message": message}
    out = [{"type": CONDITION, **summary}]
    out.extend(
        {"type": c.type, "status": c.status, "reason": c.reason, "message": c.message[:_MESSAGE_MAX]}
        for c in outcome.conditions
    )
    return out
