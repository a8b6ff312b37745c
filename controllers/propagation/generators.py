"""ApplicationSet generators: ``spec.generators`` -> parameter sets, with Argo CD's semantics.

Called by the propagation kopf handler with a ``GeneratorInputs`` it filled beforehand (cluster
Secrets, the ConfigMaps named by ``clusterDecisionResource`` generators, the duck-typed resources
of the kinds those ConfigMaps name, the git repository revisions ``git`` generators read); nothing
here reads the cluster or a repository. Supported: ``list``, ``clusters``,
``clusterDecisionResource``, ``git``, ``matrix``, ``merge``, and the post-``selector`` any
generator may carry. Parameters are flat strings (``metadata.labels.env``) for fasttemplate and
nested maps (``.metadata.labels.env``) for ``goTemplate: true``, as Argo CD produces them.

Where fleetplane departs from Argo CD (all to avoid silent surprises), it says so in ``TEMPLATING.md``:
the hub's ``in-cluster`` entry is generated as in Argo CD but refused as a destination, decisions
naming unregistered clusters are reported (``Generation.unmatched``) rather than only logged, and
unknown fields are errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controllers.propagation import (
    combining_generators,
    errors,
    git_generator,
    leaf_generators,
    selectors,
    templating,
)
from controllers.propagation.generation import Generation, GeneratorError, GeneratorInputs, GitTree, Unmatched
from controllers.propagation.git_generator import GitRequest
from controllers.propagation.gotemplate import values as govalues

__all__ = [
    "SUPPORTED_GENERATORS",
    "UNSUPPORTED_GENERATORS",
    "Generation",
    "GeneratorError",
    "GeneratorInputs",
    "GitRequest",
    "GitTree",
    "Unmatched",
    "flatten",
    "generate",
    "generate_one",
    "referenced_config_maps",
    "referenced_git",
]

SUPPORTED_GENERATORS = ("list", "clusters", "clusterDecisionResource", "git", "matrix", "merge")
#: Argo CD generators fleetplane does not implement (named so the error can say so)
UNSUPPORTED_GENERATORS = ("scmProvider", "pullRequest", "plugin", "clusterProfile")

_FIELDS = {
    "list": {"elements", "elementsYaml", "template"},
    "clusters": {"selector", "values", "template", "flatList"},
    "clusterDecisionResource": {
        "configMapRef",
        "name",
        "labelSelector",
        "requeueAfterSeconds",
        "values",
        "template",
    },
    "git": {
        "repoURL",
        "revision",
        "directories",
        "files",
        "pathParamPrefix",
        "values",
        "requeueAfterSeconds",
        "template",
    },
    "matrix": {"generators", "template"},
    "merge": {"generators", "mergeKeys", "template"},
}


def generate(appset_spec: Mapping[str, Any], inputs: GeneratorInputs) -> Generation:
    """All parameter sets of an ApplicationSet ``spec``, generator after generator.

    Raises ``GeneratorError`` (or ``TemplateError`` from interpolation) when any generator fails:
    like Argo CD, a failed generation must stop the controller from creating or deleting anything.
    """
    mode = templating.Mode.from_spec(appset_spec)
    generators = appset_spec.get("generators")
    if not isinstance(generators, list) or not generators:
        raise GeneratorError("spec.generators", "missing or empty; add at least one generator")
    result = Generation()
    for i, generator in enumerate(generators):
        one = generate_one(generator, inputs, mode, path=f"spec.generators[{i}]")
        result.params.extend(one.params)
        result.unmatched.extend(one.unmatched)
    return result


def generate_one(
    generator: Mapping[str, Any],
    inputs: GeneratorInputs,
    mode: templating.Mode,
    *,
    path: str,
    interpolate: Mapping[str, Any] | None = None,
) -> Generation:
    """The parameter sets of one generator entry (``{list: ...}``, ``{matrix: ...}``...).

    ``interpolate`` are the parameters of a matrix's first child, rendered into this generator's
    fields before it runs.
    """
    if not isinstance(generator, Mapping):
        raise GeneratorError(path, "must be a map with one generator key such as list or clusters")
    if interpolate:
        generator = templating.render_value(generator, interpolate, mode, path=path)
    kind = _generator_kind(generator, path)
    body = generator[kind]
    body_path = f"{path}.{kind}"
    if not isinstance(body, Mapping):
        raise GeneratorError(body_path, "must be a map")
    _check_fields(kind, body, body_path)
    if body.get("template"):
        raise GeneratorError(
            f"{body_path}.template",
            "per-generator template overrides are not supported by fleetplane; "
            "put the fields in spec.template",
        )
    if kind in _COMBINING:
        result = _COMBINING[kind](body, inputs, mode, body_path, generate_one)
    else:
        result = _LEAVES[kind](body, inputs, mode, body_path)
    post_selector = generator.get("selector")
    if post_selector:
        try:
            selectors.validate(post_selector, path=f"{path}.selector")
            result.params = [p for p in result.params if selectors.matches(post_selector, flatten(p))]
        except errors.SelectorError as exc:
            raise GeneratorError(f"{path}.selector", str(exc)) from None
    return result


def referenced_config_maps(appset_spec: Mapping[str, Any]) -> list[str]:
    """Names of the ConfigMaps the ``clusterDecisionResource`` generators read (literal names only;
    a name templated from a matrix's first child is resolved when generating)."""
    found: list[str] = []

    def walk(generators: Any) -> None:
        for generator in generators if isinstance(generators, list) else []:
            if not isinstance(generator, Mapping):
                continue
            cdr = generator.get("clusterDecisionResource")
            ref = cdr.get("configMapRef") if isinstance(cdr, Mapping) else None
            if isinstance(ref, str) and ref not in found:
                found.append(ref)
            for nested in ("matrix", "merge"):
                if isinstance(generator.get(nested), Mapping):
                    walk(generator[nested].get("generators"))

    walk(appset_spec.get("generators"))
    return found


def referenced_git(appset_spec: Mapping[str, Any]) -> list[GitRequest]:
    """The repository revisions the ``git`` generators read, each with the file patterns asked of
    it (literal repoURLs and revisions only, as for ``referenced_config_maps``)."""
    found: dict[tuple[str, str], set[str]] = {}
    git_generator.referenced(appset_spec.get("generators"), found)
    return [GitRequest(url, rev, tuple(sorted(patterns))) for (url, rev), patterns in found.items()]


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Parameters as ``a.b.c -> "value"`` strings (``%v`` of each leaf), as post-selectors see them."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, list) and value:
            flat.update(flatten({str(i): v for i, v in enumerate(value)}, f"{name}."))
        else:
            flat[name] = govalues.format_v(value)
    return flat


def _generator_kind(generator: Mapping[str, Any], path: str) -> str:
    keys = [k for k in generator if k != "selector"]
    supported = ", ".join(SUPPORTED_GENERATORS)
    if not keys:
        raise GeneratorError(path, f"no generator; use one of: {supported}")
    if len(keys) > 1:
        raise GeneratorError(
            path,
            f"has several generators ({', '.join(keys)}); put each in its own list item or use matrix/merge",
        )
    kind = keys[0]
    if kind in SUPPORTED_GENERATORS:
        return kind
    if kind in UNSUPPORTED_GENERATORS:
        raise GeneratorError(
            f"{path}.{kind}", f"generator {kind!r} is not supported by fleetplane; supported: {supported}"
        )
    raise GeneratorError(f"{path}.{kind}", f"unknown generator {kind!r}; supported: {supported}")


def _check_fields(kind: str, body: Mapping[str, Any], path: str) -> None:
    unknown = sorted(set(body) - _FIELDS[kind])
    if unknown:
        raise GeneratorError(
            f"{path}.{unknown[0]}", f"unknown field; {kind} takes: {', '.join(sorted(_FIELDS[kind]))}"
        )


_LEAVES = {
    "list": leaf_generators.list_params,
    "clusters": leaf_generators.clusters_params,
    "clusterDecisionResource": leaf_generators.decision_params,
    "git": git_generator.git_params,
}
_COMBINING = {"matrix": combining_generators.matrix, "merge": combining_generators.merge}
