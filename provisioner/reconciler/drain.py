"""What a deletion removes from the cluster while the cluster still runs what removes it: the works
Maestro holds for it (its agent deletes their objects and confirms), then the Argo CD Applications
the composition made (Argo CD deletes what they deployed before letting them go)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from kubeio.errors import KubeError
from provisioner import render
from provisioner.reconciler.context import Context, meta

APPLICATION = "Application"


async def applications_left(
    ctx: Context, name: str, resources: Sequence[render.ComposedResource]
) -> list[str]:
    """Delete the composed Applications from the cluster; returns those still there (their
    finalizer waits for Argo CD to remove what they deployed). A cluster this process has not
    reached since it started is left as it is: it goes with the cluster."""
    worker = ctx.clusters.get(name)
    if worker is None:
        return []
    left: list[str] = []
    for resource in resources:
        obj = resource.object
        if resource.target != "workload" or obj.get("kind") != APPLICATION:
            continue
        with contextlib.suppress(KubeError):  # an API server going away: the cluster goes next
            found = await worker.get(obj)
            if found is None:
                continue
            if not meta(found).get("deletionTimestamp"):
                await worker.delete(obj)
            if await worker.get(obj) is not None:
                left.append(f"{meta(obj).get('namespace')}/{meta(obj).get('name')}")
    return left
