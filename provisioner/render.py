"""Rendering a composition: a Jinja template in, the ordered list of composed resources out.

The operator renders a composite's revision on every reconcile, and ``fleetplane render`` does the
same offline; both call :func:`composite_values` then :func:`render`. The template runs in Jinja's
immutable sandbox with strict undefined variables: it can read its values but not change them (the
platform's Argo CD objects are shared between renders), and a missing value is an error naming the
variable, the template line and where to set it — never an empty string in a cluster's spec.

The template writes a YAML stream; each document is one composed resource::

    name: argocd-namespace        # unique in the composition, DNS-1123
    target: workload              # provider | workload | hub | maestro | identity
    waitReady: false              # optional: hold the next resources until this one is ready
    object: {apiVersion: v1, kind: Namespace, metadata: {name: argocd}}

Exactly one ``provider`` resource comes first: the ``ClusterConfig`` that :func:`cluster_spec` turns
into the provider's :class:`~provisioner.providers.base.ClusterSpec`.

The Jinja environment and its filters are ``template_env``'s; reading and checking the rendered
documents is ``composed``'s.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import jinja2

from provisioner import composed, permissions, template_env, xrd
from provisioner import labels as label_rules
from provisioner.composed import ComposedResource, ParameterError, RenderError, ReservedLabelError
from provisioner.providers.base import ClusterSpec

__all__ = [
    "ComposedResource",
    "ParameterError",
    "RenderError",
    "ReservedLabelError",
    "cluster_spec",
    "composite_values",
    "platform_values",
    "provider_name",
    "render",
]


def render(template_text: str, *, source: str, values: Mapping[str, Any]) -> list[ComposedResource]:
    """Render ``template_text`` (named ``source`` in errors) with ``values`` into composed resources."""
    try:
        template = template_env.compiled(source, template_text)
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(source, exc.lineno, f"template syntax error: {exc.message}") from None
    try:
        text = template.render({k: template_env.trace(v, k) for k, v in values.items()})
    except jinja2.UndefinedError as exc:
        raise RenderError(source, template_env.template_line(exc, source), str(exc)) from None
    except Exception as exc:  # the template is user code: any failure in it is a render error at its line
        raise RenderError(
            source, template_env.template_line(exc, source), f"{type(exc).__name__}: {exc}"
        ) from None
    return composed.parse(text, source)


def composite_values(
    composite: Mapping[str, Any],
    claim: Mapping[str, Any] | None,
    defaults: Mapping[str, Any] | None,
    platform: Mapping[str, Any],
) -> dict[str, Any]:
    """The template's variables: ``composite`` (the object), ``name`` (its cluster's name: the
    composite's, hashed with its namespace for a namespaced one), ``claim``
    (``{name, namespace}``, from ``claim`` or the composite's ``claimRef``; ``None`` for a composite
    made directly), ``parameters`` (the Composition's ``defaults`` overlaid with the composite's
    ``spec.parameters``), ``labels`` (``parameters.labels`` or ``{}``, with the labels the
    platform sets: ``fleetplane.io/team``, the claim's or the namespaced composite's namespace) and
    ``platform`` as given:
    ``{hub: {name, server, inventoryNamespace}, maestro: {grpc, kafka, topicPrefix},
    argocd: {version, install: [objects of Argo CD's install.yaml]}}``.

    A claim's or a namespaced composite's own ``spec.parameters.labels`` with a reserved key
    (``fleetplane.io/``) is a ``ReservedLabelError``; the Composition's defaults may set them.
    Malformed extra agent rules (``parameters.agentPermissions``, see ``permissions``) are a
    ``ParameterError``."""
    metadata = composite.get("metadata") or {}
    spec = composite.get("spec") or {}
    parameters = template_env.deep_merge(defaults or {}, spec.get("parameters") or {})
    claim_info: dict[str, str] | None = None
    if claim is not None:
        claim_meta = claim.get("metadata") or {}
        claim_info = {
            "name": str(claim_meta.get("name", "")),
            "namespace": str(claim_meta.get("namespace", "")),
        }
    elif (spec.get("claimRef") or {}).get("name"):
        claim_info = {
            "name": str(spec["claimRef"]["name"]),
            "namespace": str(spec["claimRef"].get("namespace", "")),
        }
    team_namespace = claim_info["namespace"] if claim_info else metadata.get("namespace")
    if team_namespace:
        # Written by a team (a claim, or a composite in its namespace): the platform's keys are not theirs.
        own = (spec.get("parameters") or {}).get("labels")
        keys = label_rules.reserved_keys(own if isinstance(own, Mapping) else None)
        if keys:
            raise ReservedLabelError(label_rules.refusal(keys))
    wrong = permissions.problems(parameters.get(permissions.PARAMETER))
    if wrong:
        raise ParameterError("; ".join(wrong))
    team = label_rules.platform_labels(str(team_namespace) if team_namespace else None)
    return {
        "composite": copy.deepcopy(dict(composite)),
        "name": xrd.cluster_name(composite),
        "claim": claim_info,
        "parameters": parameters,
        "labels": {**dict(parameters.get("labels") or {}), **team},
        "platform": platform,
    }


def platform_values(
    *,
    hub_name: str,
    hub_server: str,
    inventory_namespace: str,
    maestro_grpc: str,
    kafka: str,
    topic_prefix: str,
    argocd_version: str,
    argocd_install: list[dict[str, Any]],
) -> dict[str, Any]:
    """The ``platform`` variable, in the shape templates read it."""
    return {
        "hub": {"name": hub_name, "server": hub_server, "inventoryNamespace": inventory_namespace},
        "maestro": {"grpc": maestro_grpc, "kafka": kafka, "topicPrefix": topic_prefix},
        "argocd": {"version": argocd_version, "install": [template_env.Frozen(o) for o in argocd_install]},
    }


def cluster_spec(resource: ComposedResource, name: str) -> ClusterSpec:
    """The provider resource's ``ClusterConfig`` as the provider's :class:`ClusterSpec` for cluster
    ``name``."""
    problems = composed.provider_problems(resource.object)
    if problems:
        raise RenderError(f"composed resource {resource.name!r}", None, problems[0])
    spec = resource.object["spec"]
    return ClusterSpec(
        name=name,
        version=str(spec.get("version") or ""),
        region=str(spec.get("region") or ""),
        node_count=int(spec.get("nodeCount") or 1),
        instance_type=str(spec.get("instanceType") or ""),
        labels=dict(spec.get("labels") or {}),
        tags=dict(spec.get("tags") or {}),
        settings=copy.deepcopy(dict(spec.get("settings") or {})),
    )


def provider_name(resource: ComposedResource) -> str:
    """Which provider (``local``, ``aws`` or ``simulated``) the provider resource asks for."""
    return str((resource.object.get("spec") or {}).get("provider", ""))
