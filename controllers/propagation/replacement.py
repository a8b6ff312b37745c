"""A hub mirror written whole over the stored one: what of the stored object it keeps.

Used by ``works_and_mirrors`` when a mirror changes. A mirror is created by POST and changed by
PUT at the stored ``resourceVersion``, as Argo CD's own ApplicationSet controller writes the
Applications it generates: everything the new plan leaves out is gone from the hub (a label,
annotation or spec field the template dropped), which server-side apply gave too but at 1.1-1.6x
the hub API server's CPU per write (``fleetplane bench hub``). Kept from the stored object are what
others write on a mirror: its status when none is known to go with the write (the status
controller's), a sync ``operation`` (the hub's argocd-server), and a refresh request in
Argo CD's annotations (the propagation takes it off once seen).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controllers import contract


def replacement(mirror: Mapping[str, Any], stored: Mapping[str, Any]) -> dict[str, Any]:
    """``mirror`` as a PUT over ``stored``: at its ``resourceVersion``, with what others wrote."""
    meta, stored_meta = mirror["metadata"], stored.get("metadata") or {}
    refresh = {
        key: value
        for key, value in (stored_meta.get("annotations") or {}).items()
        if key in contract.REFRESH_ANNOTATIONS
    }
    out: dict[str, Any] = {
        **mirror,
        "metadata": {
            **meta,
            "annotations": {**refresh, **(meta.get("annotations") or {})},
            "resourceVersion": stored_meta["resourceVersion"],
        },
    }
    for kept in ("status", "operation"):
        if kept not in mirror and kept in stored:
            out[kept] = stored[kept]
    return out
