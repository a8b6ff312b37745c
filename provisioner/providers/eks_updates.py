"""Changes to a running EKS cluster that its spec asks for: the Kubernetes version of its control
plane (``update_cluster_version``, one minor version at a time as EKS allows) and the size of its
node group (``update_nodegroup_config``). One update at a time, started only while the cluster or
node group is ACTIVE (EKS refuses a second one while the first runs); the call after it sees the
update under way and waits, never sending it twice."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from provisioner.providers.base import ClusterSpec

Call = Callable[..., Awaitable[dict[str, Any]]]


async def converge(call: Call, spec: ClusterSpec, cluster: dict[str, Any], nodegroup: dict[str, Any]) -> str:
    """Start the next update the spec asks for; returns what is under way ("" when nothing is)."""
    name = spec.name
    version = str(cluster.get("version") or "")
    if spec.version and version and spec.version != version:
        if cluster.get("status") == "ACTIVE":
            await call("update_cluster_version", name=name, version=spec.version)
        return f"upgrading EKS cluster {name} from Kubernetes {version} to {spec.version}"
    scaling = nodegroup.get("scalingConfig") or {}
    size = int(scaling.get("desiredSize") or 0)
    if size != spec.node_count:
        if nodegroup.get("status") == "ACTIVE":
            await call(
                "update_nodegroup_config",
                clusterName=name,
                nodegroupName=str(nodegroup.get("nodegroupName") or ""),
                scalingConfig={
                    "minSize": spec.node_count,
                    "maxSize": spec.node_count,
                    "desiredSize": spec.node_count,
                },
            )
        return f"scaling node group {nodegroup.get('nodegroupName')} from {size} to {spec.node_count} nodes"
    return ""


def details(cluster: dict[str, Any], nodegroup: dict[str, Any]) -> dict[str, str]:
    """The version and node count the cluster runs now, for ``status.cluster``."""
    size = (nodegroup.get("scalingConfig") or {}).get("desiredSize")
    return {"version": str(cluster.get("version") or ""), "nodeCount": str(size if size is not None else "")}
