"""The generators that combine others: ``matrix`` (every pair of two children's parameter sets, the
second child possibly templated from the first's) and ``merge`` (a base child's sets overridden by
the others', matched on ``mergeKeys``).

Dispatched to by ``generators.generate_one``, which they run on their children (``generate``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from controllers.propagation import templating
from controllers.propagation.generation import (
    GenerateOne,
    Generation,
    GeneratorError,
    GeneratorInputs,
    Params,
)


def matrix(
    body: Mapping[str, Any], inputs: GeneratorInputs, mode: templating.Mode, path: str, generate: GenerateOne
) -> Generation:
    children = body.get("generators")
    if not isinstance(children, list) or len(children) != 2:
        count = len(children) if isinstance(children, list) else 0
        raise GeneratorError(f"{path}.generators", f"matrix needs exactly two child generators, got {count}")
    first = generate(children[0], inputs, mode, path=f"{path}.generators[0]")
    result = Generation(unmatched=list(first.unmatched))
    # the second child is generated once unless it refers to the first one's parameters
    shared = (
        None
        if _has_placeholder(children[1])
        else generate(children[1], inputs, mode, path=f"{path}.generators[1]")
    )
    if shared is not None:
        result.unmatched.extend(shared.unmatched)
    for a in first.params:
        second = (
            shared
            if shared is not None
            else generate(children[1], inputs, mode, path=f"{path}.generators[1]", interpolate=a)
        )
        if shared is None:
            result.unmatched.extend(second.unmatched)
        for b in second.params:
            result.params.append(_combine(a, b, mode, path))
    return result


def _combine(a: Params, b: Params, mode: templating.Mode, path: str) -> Params:
    if mode.go_template:
        # deep merge in which the first child's values win (Argo CD's mergo order)
        return _deep_merge(_deep_merge({}, b), a)
    combined = dict(a)
    for key, value in b.items():
        if key in combined and combined[key] != value:
            raise GeneratorError(
                path,
                f"both matrix children set parameter {key!r} ({combined[key]!r} vs {value!r}); "
                "rename one, or use goTemplate where the first child's value wins",
            )
        combined[key] = value
    return combined


def _deep_merge(base: Params, override: Mapping[str, Any]) -> Params:
    """``override`` merged into a copy of ``base``: maps merge key by key; empty override values
    (``""``, 0, false, null, empty list) do not replace existing ones (mergo's WithOverride)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(dict(merged[key]), value)
        elif key not in merged or not _is_empty(value):
            merged[key] = copy.deepcopy(value)
    return merged


def _is_empty(value: Any) -> bool:
    return (
        value is None or value is False or value == 0 or (isinstance(value, str | list | dict) and not value)
    )


def merge(
    body: Mapping[str, Any], inputs: GeneratorInputs, mode: templating.Mode, path: str, generate: GenerateOne
) -> Generation:
    children = body.get("generators")
    if not isinstance(children, list) or len(children) < 2:
        raise GeneratorError(
            f"{path}.generators", "merge needs at least two child generators (a base and overrides)"
        )
    keys = body.get("mergeKeys")
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
        raise GeneratorError(f"{path}.mergeKeys", "required: a non-empty list of parameter names to match on")
    merge_keys = list(dict.fromkeys(keys))
    generations = [generate(c, inputs, mode, path=f"{path}.generators[{i}]") for i, c in enumerate(children)]
    result = Generation(unmatched=[u for g in generations for u in g.unmatched])
    base = _index_by_keys(generations[0].params, merge_keys, f"{path}.generators[0]")
    for i, generation in enumerate(generations[1:], start=1):
        overrides = _index_by_keys(generation.params, merge_keys, f"{path}.generators[{i}]")
        for key, params in base.items():
            if key in overrides:
                base[key] = (
                    _deep_merge(params, overrides[key]) if mode.go_template else {**params, **overrides[key]}
                )
    result.params = list(base.values())
    return result


def _index_by_keys(params: list[Params], keys: list[str], path: str) -> dict[str, Params]:
    indexed: dict[str, Params] = {}
    for p in params:
        # a merge key is a top-level parameter, as in Argo CD (with goTemplate too)
        identity = json.dumps({k: p.get(k) for k in keys}, sort_keys=True, default=str)
        if identity in indexed:
            raise GeneratorError(
                path,
                f"two parameter sets have the same mergeKeys values {identity}; merge keys must be unique",
            )
        indexed[identity] = p
    return indexed


def _has_placeholder(value: Any) -> bool:
    if isinstance(value, str):
        return "{{" in value
    if isinstance(value, Mapping):
        return any(_has_placeholder(k) or _has_placeholder(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_placeholder(v) for v in value)
    return False
