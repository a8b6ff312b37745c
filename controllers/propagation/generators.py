"""ApplicationSet generators: ``spec.generators`` -> parameter sets, with Argo CD's semantics.

Called by the propagation kopf handler with a ``GeneratorInputs`` it filled beforehand (cluster
Secrets, the ConfigMaps named by ``clusterDecisionResource`` generators, the duck-typed resources
of the kinds those ConfigMaps name); nothing here reads the cluster. Supported: ``list``,
``clusters``, ``clusterDecisionResource``, ``matrix``, ``merge``, and the post-``selector`` any
generator may carry. Parameters are flat strings (``metadata.labels.env``) for fasttemplate and
nested maps (``.metadata.labels.env``) for ``goTemplate: true``, as Argo CD produces them.

Where fleetplane departs from Argo CD (all to avoid silent surprises), it says so in ``TEMPLATING.md``:
the hub is never an implicit ``in-cluster`` target, decisions naming unregistered clusters are
reported (``Generation.unmatched``) rather than only logged, and unknown fields are errors.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from controllers.propagation import errors, inventory, selectors, templating
from controllers.propagation.gotemplate import values as govalues

GeneratorError = errors.GeneratorError

SUPPORTED_GENERATORS = ("list", "clusters", "clusterDecisionResource", "matrix", "merge")
#: Argo CD generators fleetplane does not implement (named so the error can say so)
UNSUPPORTED_GENERATORS = ("git", "scmProvider", "pullRequest", "plugin", "clusterProfile")

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
    "matrix": {"generators", "template"},
    "merge": {"generators", "mergeKeys", "template"},
}

Params = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class GeneratorInputs:
    """Everything generators may read, fetched by the caller.

    ``config_maps`` maps a ConfigMap name (in the ApplicationSet's namespace) to its ``data``.
    ``decision_resources`` maps ``(apiVersion, kind)`` exactly as a duck-type ConfigMap names them
    (e.g. ``("cluster.open-cluster-management.io/v1beta1", "placementdecisions")``) to every such
    resource in the namespace; the generator applies ``name``/``labelSelector`` itself.
    """

    inventory: inventory.Inventory
    config_maps: Mapping[str, Mapping[str, str]] = dataclasses.field(default_factory=dict)
    decision_resources: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]] = dataclasses.field(
        default_factory=dict
    )


@dataclasses.dataclass(frozen=True)
class Unmatched:
    """A cluster decision that produced no parameters: why, and which generator saw it."""

    cluster: str
    reason: str
    path: str


@dataclasses.dataclass
class Generation:
    params: list[Params] = dataclasses.field(default_factory=list)
    unmatched: list[Unmatched] = dataclasses.field(default_factory=list)


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
    result = _GENERATORS[kind](body, inputs, mode, body_path)
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


# --- the generators -------------------------------------------------------------------------------------


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


def _list(body: Mapping[str, Any], inputs: GeneratorInputs, mode: templating.Mode, path: str) -> Generation:
    elements = body.get("elements") or []
    if not isinstance(elements, list):
        raise GeneratorError(f"{path}.elements", "must be a list of maps")
    sources = [(f"{path}.elements[{i}]", e) for i, e in enumerate(elements)]
    raw_yaml = body.get("elementsYaml")
    if raw_yaml:
        try:
            loaded = yaml.safe_load(raw_yaml) if isinstance(raw_yaml, str) else None
        except yaml.YAMLError as exc:
            raise GeneratorError(f"{path}.elementsYaml", f"not valid YAML: {exc}") from None
        if not isinstance(loaded, list):
            raise GeneratorError(f"{path}.elementsYaml", "must be a YAML list of maps (a string)")
        sources += [(f"{path}.elementsYaml[{i}]", e) for i, e in enumerate(loaded)]
    params: list[Params] = []
    for where, element in sources:
        if not isinstance(element, Mapping):
            raise GeneratorError(where, "each element must be a map of parameter names to values")
        params.append(copy.deepcopy(dict(element)) if mode.go_template else _flat_element(element, where))
    return Generation(params)


def _flat_element(element: Mapping[str, Any], where: str) -> Params:
    """A list element as fasttemplate parameters: string values, and ``values`` as ``values.<k>``."""
    params: Params = {}
    for key, value in element.items():
        if key == "values" and isinstance(value, Mapping):
            for k, v in value.items():
                params[f"values.{k}"] = _string(v, f"{where}.values.{k}")
        else:
            params[str(key)] = _string(value, f"{where}.{key}")
    return params


def _string(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    raise GeneratorError(
        where,
        f"is {type(value).__name__} {value!r}, but without goTemplate parameters must be strings; "
        "quote the value, or set goTemplate: true",
    )


def _clusters(
    body: Mapping[str, Any], inputs: GeneratorInputs, mode: templating.Mode, path: str
) -> Generation:
    if body.get("flatList"):
        raise GeneratorError(
            f"{path}.flatList", "not supported by fleetplane; generate one parameter set per cluster"
        )
    selector = body.get("selector") or {}
    values = _string_map(body.get("values"), f"{path}.values")
    try:
        selectors.validate(selector, path=f"{path}.selector")
        chosen = [c for c in inputs.inventory.clusters if selectors.matches(selector, c.labels)]
    except errors.SelectorError as exc:
        raise GeneratorError(f"{path}.selector", str(exc)) from None
    params: list[Params] = []
    for cluster in chosen:
        p: Params = {
            "name": cluster.name,
            "nameNormalized": inventory.normalize_name(cluster.name),
            "server": cluster.server,
        }
        if cluster.project:
            p["project"] = cluster.project
        if mode.go_template:
            p["metadata"] = {"labels": dict(cluster.labels), "annotations": dict(cluster.annotations)}
        else:
            p.update({f"metadata.labels.{k}": v for k, v in cluster.labels.items()})
            p.update({f"metadata.annotations.{k}": v for k, v in cluster.annotations.items()})
        # values may use the cluster's own parameters ({{name}}, {{metadata.labels.env}}...)
        rendered = {
            k: templating.render_string(v, p, mode, path=f"{path}.values.{k}") for k, v in values.items()
        }
        if mode.go_template:
            p["values"] = rendered
        else:
            p.update({f"values.{k}": v for k, v in rendered.items()})
        params.append(p)
    return Generation(params)


def _string_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise GeneratorError(where, "must be a map of strings")
    return {str(k): _string(v, f"{where}.{k}") for k, v in value.items()}


def _cluster_decision_resource(
    body: Mapping[str, Any], inputs: GeneratorInputs, mode: templating.Mode, path: str
) -> Generation:
    cm_name = body.get("configMapRef")
    if not isinstance(cm_name, str) or not cm_name:
        raise GeneratorError(
            f"{path}.configMapRef", "required: the ConfigMap naming apiVersion, kind, statusListKey, matchKey"
        )
    config = inputs.config_maps.get(cm_name)
    if config is None:
        raise GeneratorError(
            f"{path}.configMapRef",
            f"ConfigMap {cm_name!r} not found in the ApplicationSet's namespace; create it with data "
            "apiVersion, kind (the resource plural), statusListKey and matchKey",
        )
    api_version, kind = config.get("apiVersion", ""), config.get("kind", "")
    if "/" not in api_version[1:] or not kind:
        raise GeneratorError(
            f"{path}.configMapRef",
            f"ConfigMap {cm_name!r} must set data.apiVersion as group/version and data.kind "
            f"(got apiVersion={api_version!r}, kind={kind!r})",
        )
    match_key = config.get("matchKey", "")
    if not match_key:
        raise GeneratorError(
            f"{path}.configMapRef", f"ConfigMap {cm_name!r} has no data.matchKey (e.g. clusterName)"
        )
    list_key = config.get("statusListKey") or "clusters"
    name, label_selector = body.get("name") or "", body.get("labelSelector") or {}
    if bool(name) == bool(label_selector):
        raise GeneratorError(
            path, "set exactly one of name and labelSelector to choose the decision resources"
        )
    values = _string_map(body.get("values"), f"{path}.values")

    candidates = inputs.decision_resources.get((api_version, kind), [])
    try:
        chosen = [r for r in candidates if _chosen(r, name, label_selector, f"{path}.labelSelector")]
    except errors.SelectorError as exc:
        raise GeneratorError(f"{path}.labelSelector", str(exc)) from None
    if not chosen:
        wanted = f"named {name!r}" if name else "matching labelSelector"
        raise GeneratorError(path, f"no {kind} ({api_version}) {wanted} in the ApplicationSet's namespace")

    result = Generation()
    for resource in sorted(chosen, key=lambda r: str((r.get("metadata") or {}).get("name", ""))):
        resource_name = (resource.get("metadata") or {}).get("name", "")
        decisions = (resource.get("status") or {}).get(list_key) or []
        if not isinstance(decisions, list):
            raise GeneratorError(path, f"{kind} {resource_name!r}: status.{list_key} is not a list")
        for j, decision in enumerate(decisions):
            where = f"{kind} {resource_name!r} status.{list_key}[{j}]"
            match = decision.get(match_key) if isinstance(decision, Mapping) else None
            if not isinstance(match, str) or not match:
                result.unmatched.append(Unmatched("", f"{where} has no string {match_key!r}", path))
                continue
            cluster = inputs.inventory.by_name(match)
            if cluster is None:
                result.unmatched.append(
                    Unmatched(
                        match,
                        f"{where} names cluster {match!r}, which has no cluster Secret on the hub",
                        path,
                    )
                )
                continue
            p: Params = {"name": cluster.name, "server": cluster.server}
            for key, value in decision.items():  # decision keys come last and win, as in Argo CD
                p[str(key)] = value if mode.go_template else _string(value, f"{path} ({where}.{key})")
            if mode.go_template:
                p["values"] = dict(values)
            else:
                p.update({f"values.{k}": v for k, v in values.items()})
            result.params.append(p)
    return result


def _chosen(resource: Mapping[str, Any], name: str, label_selector: Mapping[str, Any], path: str) -> bool:
    metadata = resource.get("metadata") or {}
    if name:
        return bool(metadata.get("name") == name)
    return selectors.matches(label_selector, metadata.get("labels") or {}, path=path)


def _matrix(body: Mapping[str, Any], inputs: GeneratorInputs, mode: templating.Mode, path: str) -> Generation:
    children = body.get("generators")
    if not isinstance(children, list) or len(children) != 2:
        count = len(children) if isinstance(children, list) else 0
        raise GeneratorError(f"{path}.generators", f"matrix needs exactly two child generators, got {count}")
    first = generate_one(children[0], inputs, mode, path=f"{path}.generators[0]")
    result = Generation(unmatched=list(first.unmatched))
    # the second child is generated once unless it refers to the first one's parameters
    shared = (
        None
        if _has_placeholder(children[1])
        else generate_one(children[1], inputs, mode, path=f"{path}.generators[1]")
    )
    if shared is not None:
        result.unmatched.extend(shared.unmatched)
    for a in first.params:
        second = (
            shared
            if shared is not None
            else generate_one(children[1], inputs, mode, path=f"{path}.generators[1]", interpolate=a)
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


def _merge(body: Mapping[str, Any], inputs: GeneratorInputs, mode: templating.Mode, path: str) -> Generation:
    children = body.get("generators")
    if not isinstance(children, list) or len(children) < 2:
        raise GeneratorError(
            f"{path}.generators", "merge needs at least two child generators (a base and overrides)"
        )
    keys = body.get("mergeKeys")
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
        raise GeneratorError(f"{path}.mergeKeys", "required: a non-empty list of parameter names to match on")
    merge_keys = list(dict.fromkeys(keys))
    generations = [
        generate_one(c, inputs, mode, path=f"{path}.generators[{i}]") for i, c in enumerate(children)
    ]
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
        identity = json.dumps({k: _lookup(p, k) for k in keys}, sort_keys=True, default=str)
        if identity in indexed:
            raise GeneratorError(
                path,
                f"two parameter sets have the same mergeKeys values {identity}; merge keys must be unique",
            )
        indexed[identity] = p
    return indexed


def _lookup(params: Mapping[str, Any], key: str) -> Any:
    """A merge key's value: the top-level parameter, else a dotted path into nested goTemplate maps."""
    if key in params:
        return params[key]
    value: Any = params
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _has_placeholder(value: Any) -> bool:
    if isinstance(value, str):
        return "{{" in value
    if isinstance(value, Mapping):
        return any(_has_placeholder(k) or _has_placeholder(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_placeholder(v) for v in value)
    return False


_GENERATORS = {
    "list": _list,
    "clusters": _clusters,
    "clusterDecisionResource": _cluster_decision_resource,
    "matrix": _matrix,
    "merge": _merge,
}
