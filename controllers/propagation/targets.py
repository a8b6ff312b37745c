"""Checks of one rendered target: the Application's own fields, and the registered cluster its
destination names.

Called by ``plan.plan_application_set`` for every parameter set; each answer is a message for the
ApplicationSet's author (a ``TargetError`` of that target), never an exception.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from controllers.propagation import inventory

_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def application_problem(
    app: Mapping[str, Any], app_name: Any, appset_namespace: str, worker_namespace: str
) -> str | None:
    """Why the rendered Application cannot be deployed, if it cannot."""
    meta = app.get("metadata") or {}
    spec = app.get("spec")
    if not isinstance(app_name, str) or not app_name:
        return "template.metadata.name is empty; give it a name such as '{{name}}-guestbook'"
    if len(app_name) > 253 or not _DNS_SUBDOMAIN.fullmatch(app_name):
        return (
            f"Application name {app_name!r} is not a valid Kubernetes name (lower-case letters, digits, "
            "'-' and '.', at most 253); use the normalize function or nameNormalized"
        )
    if meta.get("namespace") not in (None, "", appset_namespace):
        return (
            f"template.metadata.namespace {meta['namespace']!r}: hub Applications live in the "
            f"ApplicationSet's namespace ({appset_namespace}) and worker ones in "
            f"{worker_namespace}; remove the field"
        )
    if not isinstance(spec, Mapping):
        return "template.spec is missing"
    if not spec.get("project"):
        return "template.spec.project is required (e.g. default)"
    if not spec.get("source") and not spec.get("sources"):
        return "template.spec needs source or sources"
    destination = spec.get("destination")
    if not isinstance(destination, Mapping) or not (destination.get("name") or destination.get("server")):
        return "template.spec.destination needs name or server (the managed cluster)"
    if destination.get("name") and destination.get("server"):
        return "template.spec.destination sets both name and server; keep one"
    return None


def resolve_destination(
    destination: Mapping[str, Any], clusters: inventory.Inventory, in_cluster_server: str
) -> inventory.Cluster | str:
    """The registered cluster ``destination`` names, or why there is none."""
    name, server = destination.get("name"), destination.get("server")
    hub_hint = ""
    if name == "in-cluster" or server == in_cluster_server:
        hub_hint = " ('in-cluster' is the hub itself, which the pull model does not deploy to)"
    if name:
        cluster = clusters.by_name(str(name))
        if cluster is not None:
            return cluster
        return f"destination cluster {name!r} is not registered on the hub{hub_hint}; {_known(clusters)}"
    found = clusters.by_server(str(server))
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        names = ", ".join(c.name for c in found)
        return (
            f"destination server {server!r} is registered by several clusters ({names}); use destination.name"
        )
    return f"destination server {server!r} is not registered on the hub{hub_hint}; {_known(clusters)}"


def _known(clusters: inventory.Inventory) -> str:
    names = clusters.names()
    if not names:
        return "no clusters are registered (no cluster Secrets)"
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    return f"registered clusters: {shown}"
