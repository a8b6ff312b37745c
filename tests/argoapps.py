"""Argo CD Applications in tests: one pointing at a path of a git repository, and waiting for the
status Argo CD gives it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

import pytest
from kubernetes import client


def application(name: str, repo_url: str, path: str, namespace: str) -> dict[str, Any]:
    """An automated Application in ``argocd`` deploying ``path`` of ``repo_url`` into ``namespace``."""
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


def synced_and_healthy(status: dict[str, Any]) -> bool:
    return bool(
        status.get("sync", {}).get("status") == "Synced"
        and status.get("health", {}).get("status") == "Healthy"
    )


def wait_status(
    custom: client.CustomObjectsApi,
    name: str,
    want: Callable[[dict[str, Any]], bool],
    timeout: float = 180,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        app = custom.get_namespaced_custom_object("argoproj.io", "v1alpha1", "argocd", "applications", name)
        status = cast(dict[str, Any], app).get("status") or {}
        if want(status):
            return status
        time.sleep(1)
    pytest.fail(f"Application {name} never reached the wanted status; last status: {status}")
