"""What both hubs of the conformance runs hold: the cluster Secrets, the PlacementDecision CRD and
the git repositories the corpus' ApplicationSets read.

Used by ``harness`` (fleetplane's side, as generator inputs) and ``test_corpus`` (Argo CD's side,
written to its hub).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from localinfra import gitrepo

INVENTORY_NAMESPACE = "argocd"
SECRET_TYPE = {"argocd.argoproj.io/secret-type": "cluster"}

#: name, server, labels, annotations, project (or None)
_CLUSTERS: tuple[tuple[str, str, dict[str, str], dict[str, str], str | None], ...] = (
    ("alpha", "https://alpha.example:6443", {"env": "prod", "region": "eu"}, {"team": "blue"}, None),
    ("beta", "https://beta.example:6443", {"env": "staging", "region": "us"}, {}, None),
    ("gamma", "https://gamma.example:6443", {"env": "prod", "region": "us", "tier": "gold"}, {}, "default"),
    ("Delta_Cluster", "https://delta.example:6443", {"env": "dev"}, {"owner": "ops"}, None),
)


def cluster_secrets() -> list[dict[str, Any]]:
    """Argo CD cluster Secrets (no credentials: neither side connects to the clusters)."""
    secrets = []
    for name, server, labels, notes, project in _CLUSTERS:
        data = {"name": name, "server": server, **({"project": project} if project else {})}
        secrets.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": f"cluster-{name.lower().replace('_', '-')}",
                    "namespace": INVENTORY_NAMESPACE,
                    "labels": {**SECRET_TYPE, **labels},
                    **({"annotations": notes} if notes else {}),
                },
                "stringData": data,
            }
        )
    return secrets


#: Open Cluster Management's PlacementDecision (group, version, kind and status schema as OCM
#: publishes them), so that clusterDecisionResource reads what a real OCM hub holds.
PLACEMENT_DECISION_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "placementdecisions.cluster.open-cluster-management.io"},
    "spec": {
        "group": "cluster.open-cluster-management.io",
        "names": {
            "kind": "PlacementDecision",
            "listKind": "PlacementDecisionList",
            "plural": "placementdecisions",
            "singular": "placementdecision",
        },
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1beta1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "apiVersion": {"type": "string"},
                            "kind": {"type": "string"},
                            "metadata": {"type": "object"},
                            "status": {
                                "type": "object",
                                "required": ["decisions"],
                                "properties": {
                                    "decisions": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": ["clusterName", "reason"],
                                            "properties": {
                                                "clusterName": {"type": "string"},
                                                "reason": {"type": "string"},
                                                "score": {"type": "integer", "format": "int64"},
                                            },
                                        },
                                    }
                                },
                            },
                        },
                    }
                },
            }
        ],
    },
}

#: The duck-type ConfigMap Argo CD documents for OCM placements, written into every case's namespace.
OCM_CONFIG_MAP = {
    "apiVersion": "cluster.open-cluster-management.io/v1beta1",
    "kind": "placementdecisions",
    "statusListKey": "decisions",
    "matchKey": "clusterName",
}
OCM_CONFIG_MAP_NAME = "ocm-placement-generator"

#: The repositories: name -> files (path -> text), committed on branch main; ``apps`` also gets a
#: tag ``v1`` on its first commit, then a second commit that adds ``apps/extra``.
_REPOS: dict[str, dict[str, str]] = {
    "apps": {
        "apps/guestbook/kustomization.yaml": "resources: []\n",
        "apps/podinfo/kustomization.yaml": "resources: []\n",
        "apps/Team_Tools/kustomization.yaml": "resources: []\n",
        "apps/.hidden/kustomization.yaml": "resources: []\n",
        "addons/monitoring/prometheus/values.yaml": "x: 1\n",
        "addons/monitoring/grafana/values.yaml": "x: 1\n",
        "addons/logging/loki/values.yaml": "x: 1\n",
        "addons/excluded-one/values.yaml": "x: 1\n",
        "README.md": "apps\n",
    },
    "config": {
        "clusters/alpha/config.json": '{"cluster": {"name": "alpha", "env": "prod", "replicas": 3},'
        ' "aws_account": "1234", "tags": ["a", "b"]}\n',
        "clusters/beta/config.json": '{"cluster": {"name": "beta", "env": "staging", "replicas": 1000000},'
        ' "aws_account": "5678", "tags": []}\n',
        "clusters/gamma/config.yaml": (
            "cluster:\n  name: gamma\n  env: prod\n  replicas: 2\naws_account: '9999'\n"
        ),
        "lists/apps.yaml": "- app: one\n  port: 80\n- app: two\n  port: 443\n",
        "skip/config.json": '{"cluster": {"name": "skip"}}\n',
    },
}
EXTRA = {"apps/extra/kustomization.yaml": "resources: []\n"}


def make_repos(root: Path) -> dict[str, str]:
    """The repositories under ``root``; returns name -> URL (``file://``)."""
    urls = {}
    for name, files in _REPOS.items():
        repo = root / name
        gitrepo.commit(repo, files, f"{name}: first commit")
        if name == "apps":
            gitrepo.tag(repo, "v1")
            gitrepo.commit(repo, EXTRA, "apps: extra")
        urls[name] = gitrepo.url(repo)
    return urls
