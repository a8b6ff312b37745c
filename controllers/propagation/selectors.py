"""Kubernetes label selectors (``matchLabels`` + ``matchExpressions``) over plain string maps.

Used by the ``clusters`` generator (cluster Secret labels), the ``clusterDecisionResource``
generator (duck-typed resource labels), generator post-selectors (flattened parameters) and
RollingSync steps (Application labels). Semantics are Kubernetes': every requirement must hold;
``NotIn`` and ``DoesNotExist`` also match when the key is absent; an empty selector matches all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from controllers.propagation import errors

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str], *, path: str = "selector") -> bool:
    """Whether ``labels`` satisfy ``selector`` (a LabelSelector dict; ``None`` matches everything)."""
    if not selector:
        return True
    if not isinstance(selector, Mapping):
        raise errors.SelectorError(f"{path}: must be a map with matchLabels/matchExpressions")
    match_labels = selector.get("matchLabels") or {}
    if not isinstance(match_labels, Mapping):
        raise errors.SelectorError(f"{path}.matchLabels: must be a map of label key to value")
    for key, value in match_labels.items():
        if labels.get(key) != str(value):
            return False
    expressions = selector.get("matchExpressions") or []
    return match_expressions(expressions, labels, path=f"{path}.matchExpressions")


def match_expressions(
    expressions: Sequence[Mapping[str, Any]], labels: Mapping[str, str], *, path: str = "matchExpressions"
) -> bool:
    """Whether every requirement in ``expressions`` holds for ``labels``."""
    if not isinstance(expressions, Sequence) or isinstance(expressions, str):
        raise errors.SelectorError(f"{path}: must be a list of {{key, operator, values}}")
    return all(_requirement_holds(expr, labels, path=f"{path}[{i}]") for i, expr in enumerate(expressions))


def validate(selector: Mapping[str, Any] | None, *, path: str = "selector") -> None:
    """Raise ``SelectorError`` for a malformed selector even when there is nothing to match yet."""
    matches(selector, {}, path=path)


def _requirement_holds(expr: Mapping[str, Any], labels: Mapping[str, str], *, path: str) -> bool:
    if not isinstance(expr, Mapping):
        raise errors.SelectorError(f"{path}: must be a map with key, operator and values")
    key = expr.get("key")
    operator = expr.get("operator")
    values = expr.get("values") or []
    if not isinstance(key, str) or not key:
        raise errors.SelectorError(f"{path}.key: required (the label key to test)")
    if not isinstance(values, Sequence) or isinstance(values, str):
        raise errors.SelectorError(f"{path}.values: must be a list of strings")
    wanted = [str(v) for v in values]
    if operator in ("In", "NotIn"):
        if not wanted:
            raise errors.SelectorError(f"{path}.values: operator {operator} needs at least one value")
        present = key in labels and labels[key] in wanted
        return present if operator == "In" else not present
    if operator in ("Exists", "DoesNotExist"):
        if wanted:
            raise errors.SelectorError(f"{path}.values: operator {operator} takes no values; remove them")
        return bool((key in labels) == (operator == "Exists"))
    raise errors.SelectorError(
        f"{path}.operator: {operator!r} is not a label selector operator; use one of {', '.join(OPERATORS)}"
    )
