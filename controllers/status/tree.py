"""A hub mirror's resource tree, in the form and at the place Argo CD's API server reads it.

argocd-server answers ``/api/v1/applications/{name}/resource-tree`` (and ``argocd app get -o
tree``, the UI's graph) from what Argo CD's application controller caches in Redis, never from the
Application object. No application controller reconciles a mirror, so the hub controllers write
each mirror's tree there themselves, built from the resources its cluster reported
(``status.resources`` of the worker's Application, already bounded by the aggregation).

The facts below are Argo CD's (``util/cache/appstate``, ``util/cache``, v3.6): the key is
``app|resources-tree|<instance>|<cache version>`` with ``.gz`` appended when values are compressed
(the default, ``--redis-compress gzip``), the value an ``ApplicationTree`` as JSON (one line, as
Go's encoder writes it), gzip-compressed; watchers of a tree are told on the channel of the
Application's managed-resources key. ``<instance>`` is the Application's name in Argo CD's own
namespace, ``<namespace>_<name>`` in any other.
"""

from __future__ import annotations

import gzip
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

#: Argo CD's ``common.CacheVersion`` in v3.6: part of every cache key
CACHE_VERSION = "1.8.3"
#: the namespace of the UIDs given to nodes: a cluster reports no UID for its resources
_UID_NAMESPACE = uuid.UUID("5b0c3b7e-5f1d-4a4e-9a6f-0d6c1f6f6a10")


def instance_name(namespace: str, name: str, argocd_namespace: str) -> str:
    """The name Argo CD's caches know an Application by."""
    return name if namespace == argocd_namespace else f"{namespace}_{name}"


def tree_key(instance: str) -> str:
    return f"app|resources-tree|{instance}|{CACHE_VERSION}.gz"


def updates_channel(instance: str) -> str:
    """Where argocd-server listens for news of an Application's tree (its streaming endpoints)."""
    return f"app|managed-resources|{instance}|{CACHE_VERSION}"


def node_uid(cluster: str, resource: Mapping[str, Any]) -> str:
    """A stable UID for a reported resource (Argo CD's CLI keys its tree by UID)."""
    parts = [cluster, *(str(resource.get(k, "")) for k in ("group", "kind", "namespace", "name"))]
    return str(uuid.uuid5(_UID_NAMESPACE, "/".join(parts)))


def application_tree(resources: Sequence[Mapping[str, Any]], cluster: str) -> dict[str, Any]:
    """An ``ApplicationTree`` of the resources a cluster reported, each a root node."""
    nodes = []
    for resource in resources:
        node: dict[str, Any] = {
            k: resource[k] for k in ("group", "version", "kind", "namespace", "name") if resource.get(k)
        }
        node["uid"] = node_uid(cluster, resource)
        health = resource.get("health")
        if isinstance(health, Mapping) and health.get("status"):
            node["health"] = {k: health[k] for k in ("status", "message") if health.get(k)}
        node["info"] = [{"name": "Cluster", "value": cluster}]
        nodes.append(node)
    return {"nodes": nodes}


def encode(tree: Mapping[str, Any]) -> bytes:
    """The cached form of a tree: JSON and a newline, gzip-compressed (no timestamp, so an
    unchanged tree encodes to the same bytes)."""
    return gzip.compress(orjson.dumps(tree) + b"\n", mtime=0)


def decode(data: bytes) -> dict[str, Any]:
    value = orjson.loads(gzip.decompress(data))
    if not isinstance(value, dict):
        raise ValueError("a cached resource tree is not a JSON object")
    return value
