"""Argo CD on a local worker cluster is real: it syncs from a local git repository.

Cases: an Application pointing at a ConfigMap in a local git repository becomes Synced/Healthy and
the ConfigMap exists; an Application whose repoURL does not exist reports sync status ``Unknown``
with an error message and deploys nothing (the ground for the lifecycle cases).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from localinfra import argocd, gitrepo, kube
from tests import argoapps

pytestmark = pytest.mark.integration


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
        argoapps.application("smoke-good", repo, "apps/configmap1", "smoke-good"),
    )
    status = argoapps.wait_status(
        custom,
        "smoke-good",
        argoapps.synced_and_healthy,
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
        argoapps.application("smoke-bad", missing, "apps/configmap1", "smoke-bad"),
    )
    status = argoapps.wait_status(
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
