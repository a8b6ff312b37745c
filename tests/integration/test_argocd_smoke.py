"""Argo CD on a local worker cluster is real: it syncs from a local git repository.

Cases: an Application pointing at a ConfigMap in a local git repository becomes Synced/Healthy and
the ConfigMap exists; an Application whose repoURL does not exist reports sync status ``Unknown``
with an error message and deploys nothing (the ground for the lifecycle cases).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from localinfra import argocd, gitrepo, kube

pytestmark = pytest.mark.integration


def _application(name: str, repo_url: str, path: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd"},
        "spec": {
            "project": "default",
            "source": {"repoURL": repo_url, "path": path, "targetRevision": "HEAD"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
            "syncPolicy": {
                "automated": {"prune": True, "selfHeal": True},
                "syncOptions": ["CreateNamespace=true"],
            },
        },
    }


def _wait_status(
    custom: client.CustomObjectsApi, name: str, want: Any, timeout: float = 180
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        app = custom.get_namespaced_custom_object("argoproj.io", "v1alpha1", "argocd", "applications", name)
        status = app.get("status") or {}
        if want(status):
            return status
        time.sleep(1)
    pytest.fail(f"Application {name} never reached the wanted status; last status: {status}")


@pytest.fixture(scope="module")
def worker(argocd_workers: list[argocd.ArgoCD], worker_clusters: list[kube.Cluster]) -> kube.Cluster:
    return worker_clusters[0]


def test_syncs_configmap_from_local_git_repo(worker: kube.Cluster, tmp_path: Path) -> None:
    repo = gitrepo.demo_apps_repo(tmp_path / "apps")
    api = config.new_client_from_config(str(worker.kubeconfig))
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(
        "argoproj.io",
        "v1alpha1",
        "argocd",
        "applications",
        _application("smoke-good", repo, "apps/configmap1", "smoke-good"),
    )
    status = _wait_status(
        custom,
        "smoke-good",
        lambda s: (
            s.get("sync", {}).get("status") == "Synced" and s.get("health", {}).get("status") == "Healthy"
        ),
    )
    assert status["sync"]["revision"]
    cm = client.CoreV1Api(api).read_namespaced_config_map("configmap1", "smoke-good")
    assert cm.data == {"greeting": "hello from fleetplane"}


def test_missing_repository_reports_unknown_with_message(worker: kube.Cluster, tmp_path: Path) -> None:
    api = config.new_client_from_config(str(worker.kubeconfig))
    custom = client.CustomObjectsApi(api)
    missing = gitrepo.url(tmp_path / "does-not-exist")
    custom.create_namespaced_custom_object(
        "argoproj.io",
        "v1alpha1",
        "argocd",
        "applications",
        _application("smoke-bad", missing, "apps/configmap1", "smoke-bad"),
    )
    status = _wait_status(
        custom,
        "smoke-bad",
        lambda s: (
            s.get("sync", {}).get("status") == "Unknown"
            and any(c.get("message") for c in s.get("conditions", []))
        ),
    )
    messages = " ".join(c["message"] for c in status["conditions"])
    assert "does-not-exist" in messages or "repository" in messages.lower()
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(api).read_namespaced_config_map("configmap1", "smoke-bad")
    assert err.value.status == 404
