"""Composition functions: the steps of a ``mode: Pipeline`` Composition.

A function is code installed with the platform, never carried inside a Composition (Compositions
may come from Git): the built-in Jinja template function, Python callables registered under the
``fleetplane.functions`` entry-point group, and function servers speaking Crossplane's RunFunction
gRPC protocol (``wire``). Each step gets a :class:`Request` — the observed composite and composed
resources, the desired resources the steps before it made, its own ``input`` and the pipeline's
``context`` — and returns a :class:`Response`: the desired resources as they should be now (or
``None`` to leave them), results (``Normal``, ``Warning``, ``Fatal``) and conditions for the
composite. A Python function may be a plain or an ``async`` callable; a plain one runs in a worker
thread, so a slow one never holds the provisioner's event loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from provisioner.composed import ComposedResource

ENTRY_POINT_GROUP = "fleetplane.functions"
#: the built-in function that renders a Jinja template (a Composition's ``spec.template``)
TEMPLATE = "fleetplane-template"

Severity = Literal["Normal", "Warning", "Fatal"]
SEVERITIES: tuple[Severity, ...] = ("Normal", "Warning", "Fatal")


@dataclass(frozen=True)
class Result:
    """What a step reports: ``Fatal`` stops the pipeline and nothing is applied."""

    severity: Severity
    message: str
    reason: str = ""


@dataclass(frozen=True)
class Condition:
    """A condition a step sets on the composite (any type but ``Synced`` and ``Ready``)."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str = ""


@dataclass
class Request:
    step: str
    #: the step's ``input`` in the Composition (free-form, the function's own schema)
    input: dict[str, Any]
    #: the composite as the provisioner read it
    composite: dict[str, Any]
    #: the composed resources as the composite's ``status.resources`` lists them, by name
    observed: dict[str, dict[str, Any]]
    #: what the steps before this one composed, in the order it is applied
    desired: list[ComposedResource]
    #: what earlier steps left for later ones
    context: dict[str, Any]
    #: the template's variables (composite, name, claim, parameters, labels, platform); Python
    #: functions only: a function server is not sent the platform's settings
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class Response:
    #: the desired resources after this step, replacing the request's; ``None`` leaves them as they were
    desired: list[ComposedResource] | None = None
    results: list[Result] = field(default_factory=list)
    #: the context for the next steps; ``None`` leaves it as it was
    context: dict[str, Any] | None = None
    conditions: list[Condition] = field(default_factory=list)


Function = Callable[[Request], Response | Awaitable[Response]]


class FunctionError(Exception):
    """A function could not be run or answered nonsense: the message names it and what to do."""
