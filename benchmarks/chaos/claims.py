"""The provisioner's workload in the chaos suite and ``bench chaos``, and its exact outcome.

Pure logic. A run's ClusterClaims (the ``simulated`` provider) applied at once and struck by the
kill of the provisioner's leader once a third are Ready: in the end every claim is Ready with
exactly one Maestro consumer and one hub inventory entry (found by the run's label), and once the
claims are deleted, nothing of theirs is left.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

GROUP = "platform.fleetplane.io/v1alpha1"
#: the hub's inventory: Argo CD's cluster Secrets
INVENTORY = "/api/v1/namespaces/argocd/secrets"
#: the label a run's claims give their clusters (inventory entries, Maestro consumers)
RUN_LABEL = "chaos-run"
#: what a simulated cluster's Argo CD would sync (nothing fetches it)
APPS_REPO = "https://git.invalid/chaos/apps.git"
#: the fewest claims a benchmark's rollout has (a third of them is the strike)
FEWEST = 20


def count_for(works: int) -> int:
    """Claims in ``bench chaos``'s rollout for ``--works``: a tenth, at least `FEWEST`."""
    return max(FEWEST, works // 10)


def path(namespace: str) -> str:
    return f"/apis/{GROUP}/namespaces/{namespace}/clusterclaims"


def claim(name: str, namespace: str, run: str) -> dict[str, Any]:
    return {
        "apiVersion": GROUP,
        "kind": "ClusterClaim",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "parameters": {
                "provider": "simulated",
                "labels": {RUN_LABEL: run},
                "apps": {"repoURL": APPS_REPO, "path": "apps"},
            }
        },
    }


def ready(items: Iterable[Mapping[str, Any]]) -> list[str]:
    """The names of the claims whose Ready condition is True."""
    return sorted(
        c["metadata"]["name"]
        for c in items
        if any(
            k.get("type") == "Ready" and k.get("status") == "True"
            for k in (c.get("status") or {}).get("conditions") or []
        )
    )


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """What the hub and Maestro hold of a run's claims."""

    #: the claims Ready, and every claim there, by name
    ready: Sequence[str]
    present: Sequence[str]
    #: Maestro's consumers and the hub's inventory entries carrying the run's label
    consumers: Sequence[str]
    inventory: Sequence[str]


def pending_provisioned(names: Sequence[str], snapshot: Snapshot) -> list[str]:
    """What keeps every claim of ``names`` from being Ready with exactly one consumer and one
    inventory entry (empty: each is)."""
    left = []
    not_ready = sorted(set(names) - set(snapshot.ready))
    if not_ready:
        left.append(f"{len(not_ready)}/{len(names)} claims not Ready, e.g. {not_ready[:3]}")
    for what, held in (("consumers", snapshot.consumers), ("inventory entries", snapshot.inventory)):
        if len(held) != len(names) or len(set(held)) != len(held):
            left.append(f"{len(held)} {what} ({len(set(held))} distinct) for {len(names)} claims")
    return left


def pending_gone(snapshot: Snapshot) -> list[str]:
    """What the deleted claims left behind (empty: nothing)."""
    return [
        f"{len(held)} {what} left"
        for what, held in (
            ("claims", snapshot.present),
            ("consumers", snapshot.consumers),
            ("inventory entries", snapshot.inventory),
        )
        if held
    ]
