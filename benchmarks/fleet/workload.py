"""What ``bench fleet`` applies: inventory Secrets of N clusters and M opted-in ApplicationSets,
each selecting every one of them; and the phases it times."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from controllers import contract

NAMESPACE = "argocd"
BENCH_LABEL = "fleetplane.io/bench"
ARGOCD = ("argoproj.io", "v1alpha1")
REVISIONS = ("HEAD", "v2")
PHASES = frozenset({"create", "update", "delete"})


def parse_phases(text: str) -> frozenset[str]:
    """``--phases``: create always runs (the others need what it made); update and delete may be
    left out, e.g. to time create alone at a scale where all three would not fit the time at hand."""
    phases = frozenset(p.strip() for p in text.split(",") if p.strip())
    unknown = sorted(phases - PHASES)
    if unknown or "create" not in phases:
        raise ValueError(
            f"--phases {text!r}: expected a comma-separated list of create, update, delete that "
            "includes create (e.g. create or create,update,delete)"
        )
    return phases


def cluster_name(index: int) -> str:
    return f"cluster-{index:05d}"


def inventory_secret(cluster: str, name: str, labels: Mapping[str, str], server: str) -> dict[str, Any]:
    """An Argo CD cluster Secret ``name`` of the pull model for ``cluster`` (its name and a server
    nothing connects to, no credentials), with ``labels`` for the generators to select."""
    fields = {"name": cluster, "server": server}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {"argocd.argoproj.io/secret-type": "cluster", **labels},
        },
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in fields.items()},
    }


def cluster_secret(name: str) -> dict[str, Any]:
    """A bench cluster's inventory Secret."""
    return inventory_secret(name, name, {BENCH_LABEL: "true"}, f"https://{name}.bench.invalid")


def application_set(index: int, target_revision: str = REVISIONS[0]) -> dict[str, Any]:
    """An opted-in ApplicationSet: a guestbook Application on every bench cluster."""
    name = f"guestbook-{index:03d}"
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {contract.PULL_LABEL: contract.PULL_LABEL_VALUE},
        },
        "spec": {
            "generators": [{"clusters": {"selector": {"matchLabels": {BENCH_LABEL: "true"}}}}],
            "template": {
                "metadata": {"name": f"{{{{name}}}}-{name}", "labels": {"app": "guestbook"}},
                "spec": {
                    "project": "default",
                    "source": {
                        "repoURL": "https://github.com/argoproj/argocd-example-apps.git",
                        "path": "guestbook",
                        "targetRevision": target_revision,
                    },
                    "destination": {"name": "{{name}}", "namespace": name},
                    "syncPolicy": {
                        "automated": {"prune": True, "selfHeal": True},
                        "syncOptions": ["CreateNamespace=true"],
                    },
                },
            },
        },
    }


def target_revision(bundle: Mapping[str, Any]) -> str | None:
    """The ``targetRevision`` of the Application a work's bundle carries (its first manifest)."""
    manifests = bundle.get("manifests") or ()
    source = ((manifests[0].get("spec") or {}).get("source") or {}) if manifests else {}
    revision = source.get("targetRevision")
    return str(revision) if revision is not None else None
