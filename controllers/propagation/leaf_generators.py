"""The generators that make parameter sets themselves: ``list`` (literal elements), ``clusters`` (the
inventory's cluster Secrets) and ``clusterDecisionResource`` (a placement's decisions).

Dispatched to by ``generators.generate_one``; everything they read is in ``GeneratorInputs``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from controllers.propagation import errors, inventory, selectors, templating
from controllers.propagation.generation import (
    Generation,
    GeneratorError,
    GeneratorInputs,
    Params,
    Unmatched,
    go_json,
    string,
    string_map,
)
from controllers.propagation.gotemplate import values as govalues


def list_params(
    body: Mapping[str, Any], inputs: GeneratorInputs, mode: templating.Mode, path: str
) -> Generation:
    elements = body.get("elements") or []
    if not isinstance(elements, list):
        raise GeneratorError(f"{path}.elements", "must be a list of maps")
    sources = [(f"{path}.elements[{i}]", e, False) for i, e in enumerate(elements)]
    raw_yaml = body.get("elementsYaml")
    if raw_yaml:
        try:
            loaded = yaml.safe_load(raw_yaml) if isinstance(raw_yaml, str) else None
        except yaml.YAMLError as exc:
            raise GeneratorError(f"{path}.elementsYaml", f"not valid YAML: {exc}") from None
        if not isinstance(loaded, list):
            raise GeneratorError(f"{path}.elementsYaml", "must be a YAML list of maps (a string)")
        sources += [(f"{path}.elementsYaml[{i}]", e, True) for i, e in enumerate(loaded)]
    params: list[Params] = []
    for where, element, from_yaml in sources:
        if not isinstance(element, Mapping):
            raise GeneratorError(where, "each element must be a map of parameter names to values")
        # Argo CD flattens ``elements`` for fasttemplate, but uses ``elementsYaml`` ones as written
        # (only their string values substitute); numbers are float64 either way, as Go decodes them
        flat = not mode.go_template and not from_yaml
        params.append(_flat_element(element, where) if flat else go_json(element))
    return Generation(params)


def _flat_element(element: Mapping[str, Any], where: str) -> Params:
    """A list element as fasttemplate parameters: string values, and ``values`` as ``values.<k>``."""
    params: Params = {}
    for key, value in element.items():
        if key == "values" and isinstance(value, Mapping):
            for k, v in value.items():
                params[f"values.{k}"] = string(v, f"{where}.values.{k}")
        else:
            params[str(key)] = string(value, f"{where}.{key}")
    return params


def clusters_params(
    body: Mapping[str, Any], inputs: GeneratorInputs, mode: templating.Mode, path: str
) -> Generation:
    if body.get("flatList"):
        raise GeneratorError(
            f"{path}.flatList", "not supported by fleetplane; generate one parameter set per cluster"
        )
    selector = body.get("selector") or {}
    values = string_map(body.get("values"), f"{path}.values")
    try:
        selectors.validate(selector, path=f"{path}.selector")
        chosen = [c for c in inputs.inventory.clusters if selectors.matches(selector, c.labels)]
    except errors.SelectorError as exc:
        raise GeneratorError(f"{path}.selector", str(exc)) from None
    entries = [_cluster_entry(c, mode) for c in chosen]
    # Argo CD adds its own cluster (in-cluster) to a clusters generator with no selector unless a
    # Secret registers that server; a pull hub then refuses it as a destination, as Argo CD does
    # with in-cluster disabled.
    no_selector = not selector.get("matchLabels") and not selector.get("matchExpressions")
    if no_selector and not inventory_has_server(inputs.inventory, IN_CLUSTER_SERVER):
        entries.append(
            {
                "name": IN_CLUSTER_NAME,
                "nameNormalized": IN_CLUSTER_NAME,
                "server": IN_CLUSTER_SERVER,
                "project": "",
            }
        )
    for p in entries:
        add_values(p, values, mode, f"{path}.values")
    return Generation(entries)


IN_CLUSTER_NAME = "in-cluster"
IN_CLUSTER_SERVER = "https://kubernetes.default.svc"


def inventory_has_server(clusters: inventory.Inventory, server: str) -> bool:
    return any(c.server == server for c in clusters.clusters)


def _cluster_entry(cluster: inventory.Cluster, mode: templating.Mode) -> Params:
    p: Params = {
        "name": cluster.name,
        "nameNormalized": inventory.normalize_name(cluster.name),
        "server": cluster.server,
        "project": cluster.project,
    }
    if mode.go_template:
        # as in Argo CD, empty label or annotation maps are absent, not empty
        meta: dict[str, Any] = {}
        if cluster.annotations:
            meta["annotations"] = dict(cluster.annotations)
        if cluster.labels:
            meta["labels"] = dict(cluster.labels)
        p["metadata"] = meta
    else:
        p.update({f"metadata.labels.{k}": v for k, v in cluster.labels.items()})
        p.update({f"metadata.annotations.{k}": v for k, v in cluster.annotations.items()})
    return p


def add_values(params: Params, values: Mapping[str, str], mode: templating.Mode, path: str) -> None:
    """A generator's ``values``, rendered with the parameter set's own parameters, added to it as
    ``values.<k>`` (or, with goTemplate, a ``values`` map, present only when there are values)."""
    rendered = {k: templating.render_string(v, params, mode, path=f"{path}.{k}") for k, v in values.items()}
    if mode.go_template:
        if rendered:
            params["values"] = rendered
    else:
        params.update({f"values.{k}": v for k, v in rendered.items()})


def decision_params(
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
    values = string_map(body.get("values"), f"{path}.values")

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
                p[str(key)] = govalues.format_v(value)  # Argo CD prints every one with %v
            if mode.go_template and values:
                p["values"] = dict(values)
            elif not mode.go_template:
                p.update({f"values.{k}": v for k, v in values.items()})
            result.params.append(p)
    return result


def _chosen(resource: Mapping[str, Any], name: str, label_selector: Mapping[str, Any], path: str) -> bool:
    metadata = resource.get("metadata") or {}
    if name:
        return bool(metadata.get("name") == name)
    return selectors.matches(label_selector, metadata.get("labels") or {}, path=path)
