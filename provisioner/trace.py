"""The tree ``fleetplane trace`` prints: claim -> composite -> composed resources -> cluster -> agent -> apps.

Pure: the CLI reads the objects (hub, Maestro) and hands them here; each node is a line with its
state and message, so a person sees at once which step is not Ready and why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kubeio import conditions as kube_conditions
from provisioner import conditions


@dataclass
class Node:
    label: str
    state: str = ""
    message: str = ""
    ok: bool | None = None
    children: list[Node] = field(default_factory=list)


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _object_node(obj: Mapping[str, Any]) -> Node:
    meta = _meta(obj)
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    synced = kube_conditions.find(kube_conditions.of(obj), conditions.SYNCED) or {}
    ready = kube_conditions.find(kube_conditions.of(obj), conditions.READY) or {}
    state = f"Synced={synced.get('status', '?')} Ready={ready.get('status', '?')}"
    failing = synced if synced.get("status") == "False" else ready
    message = str(failing.get("message") or "") if failing.get("status") != "True" else ""
    return Node(f"{obj.get('kind')} {where}{meta.get('name')}", state, message, ready.get("status") == "True")


def build(
    claim: Mapping[str, Any] | None,
    composite: Mapping[str, Any] | None,
    works: Sequence[Mapping[str, Any]] = (),
    apps: Sequence[Mapping[str, Any]] = (),
) -> Node:
    """``works``: ``{name, applied: bool|None, message}`` per Maestro work of the cluster; ``apps``:
    the hub Applications targeting it."""
    if composite is None:
        root = _object_node(claim or {})
        root.children.append(Node("composite", "missing", "the claim is not bound yet", False))
        return root
    top = _object_node(composite)
    status = composite.get("status") or {}
    if status.get("compositionRevision"):
        top.state += f"  revision {status['compositionRevision']}"
    for resource in status.get("resources") or []:
        ready = bool(resource.get("ready"))
        label = f"{resource.get('name')}: {resource.get('target')} {resource.get('kind')}"
        if resource.get("objectName"):
            where = f"{resource['namespace']}/" if resource.get("namespace") else ""
            label += f" {where}{resource['objectName']}"
        top.children.append(
            Node(label, "Ready" if ready else "NotReady", str(resource.get("message") or ""), ready)
        )
    cluster = status.get("cluster") or {}
    if cluster:
        node = Node(
            f"cluster {cluster.get('name')} ({cluster.get('provider')})",
            str(cluster.get("phase") or ""),
            str(cluster.get("endpoint") or ""),
            cluster.get("phase") == "Ready",
        )
        agent = Node(
            "Maestro agent", f"{len(works)} work(s)", "", all(w.get("applied") for w in works) or None
        )
        for work in works:
            agent.children.append(
                Node(
                    f"work {work.get('name')}",
                    "Applied" if work.get("applied") else "Pending",
                    str(work.get("message") or ""),
                    bool(work.get("applied")),
                )
            )
        node.children.append(agent)
        for app in apps:
            app_status = app.get("status") or {}
            sync = (app_status.get("sync") or {}).get("status") or "Unknown"
            health = (app_status.get("health") or {}).get("status") or "Unknown"
            meta = _meta(app)
            node.children.append(
                Node(
                    f"Application {meta.get('namespace')}/{meta.get('name')}",
                    f"{sync}/{health}",
                    "",
                    sync == "Synced" and health == "Healthy",
                )
            )
        top.children.append(node)
    if claim is None:
        return top
    root = _object_node(claim)
    root.children.append(top)
    return root


def lines(node: Node, prefix: str = "", last: bool = True, top: bool = True) -> list[str]:
    """The tree as text lines (box-drawing branches), for terminals and tests."""
    branch = "" if top else ("└─ " if last else "├─ ")
    text = f"{prefix}{branch}{node.label}"
    if node.state:
        text += f"  [{node.state}]"
    if node.message:
        text += f"  {node.message}"
    out = [text]
    child_prefix = prefix if top else prefix + ("   " if last else "│  ")
    for i, child in enumerate(node.children):
        out += lines(child, child_prefix, i == len(node.children) - 1, top=False)
    return out
