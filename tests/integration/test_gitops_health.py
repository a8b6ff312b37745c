"""Argo CD judges the platform's objects with the health checks the management Argo CD installs.

Argo CD's own ``argocd admin settings resource-overrides health`` (the built binary, no cluster)
runs the Lua of ``argocd-cm`` as ``hub_gitops.config_objects`` writes it against each state a
claim (or a definition, a Composition) goes through, and prints what the application controller
would aggregate into the management Application's health.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from localinfra import build, hub_gitops, hub_gitops_health, paths

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def argocd_cm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build.ensure_kube_and_argocd()
    (cm,) = [
        o
        for o in hub_gitops.config_objects()
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "argocd-cm"
    ]
    path = tmp_path_factory.mktemp("argocd-cm") / "argocd-cm.yaml"
    path.write_text(yaml.safe_dump(cm))
    return path


def health(argocd_cm: Path, tmp_path: Path, obj: dict[str, Any]) -> tuple[str, str]:
    """(status, message) as Argo CD assesses ``obj``."""
    resource = tmp_path / "resource.yaml"
    resource.write_text(yaml.safe_dump(obj))
    out = subprocess.run(
        [
            str(paths.bin_dir() / "argocd"),
            "admin",
            "settings",
            "resource-overrides",
            "health",
            str(resource),
            "--argocd-cm-path",
            str(argocd_cm),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "ARGOCD_BINARY_NAME": "argocd", "HOME": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr
    said = dict(line.split(": ", 1) for line in out.stdout.splitlines() if ": " in line)
    assert "STATUS" in said, out.stdout
    return said["STATUS"], said.get("MESSAGE", "")


def condition(kind: str, status: str, reason: str, message: str = "", generation: int = 1) -> dict[str, Any]:
    return {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }


def claim(*conditions: dict[str, Any], generation: int = 1, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "dev-1", "namespace": "team-a", "generation": generation}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    obj: dict[str, Any] = {
        "apiVersion": "platform.fleetplane.io/v1alpha1",
        "kind": "ClusterClaim",
        "metadata": meta,
        "spec": {"parameters": {"provider": "local"}},
    }
    if conditions:
        obj["status"] = {"conditions": list(conditions)}
    return obj


SYNCED = condition("Synced", "True", "ReconcileSuccess")


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (claim(), ("Progressing", "waiting for the provisioner")),
        (
            claim(SYNCED, condition("Ready", "False", "Creating", "waiting for Argo CD")),
            ("Progressing", "waiting for Argo CD"),
        ),
        (claim(SYNCED, condition("Ready", "True", "Available")), ("Healthy", "Available")),
        (
            claim(
                condition(
                    "Synced",
                    "False",
                    "ReservedLabel",
                    "spec.parameters.labels: fleetplane.io/team is reserved",
                )
            ),
            ("Degraded", "spec.parameters.labels: fleetplane.io/team is reserved"),
        ),
        (
            claim(SYNCED, condition("Ready", "False", "Unavailable", "the API server does not answer")),
            ("Degraded", "the API server does not answer"),
        ),
        (
            claim(SYNCED, condition("Ready", "True", "Available"), generation=2),
            ("Progressing", "the provisioner has not seen generation 2 yet"),
        ),
        (
            claim(SYNCED, condition("Ready", "True", "Available"), deleting=True),
            ("Progressing", "Pending deletion"),
        ),
    ],
    ids=["new", "creating", "ready", "refused", "unavailable", "stale", "deleting"],
)
def test_a_claim_is_judged_by_its_conditions(
    argocd_cm: Path, tmp_path: Path, obj: dict[str, Any], expected: tuple[str, str]
) -> None:
    assert health(argocd_cm, tmp_path, obj) == expected


def test_every_platform_kind_has_the_check(argocd_cm: Path, tmp_path: Path) -> None:
    for group, kind in hub_gitops_health.KINDS:
        obj = claim(condition("Synced", "False", "InvalidComposition", "no template"))
        obj["apiVersion"], obj["kind"] = f"{group}/v1alpha1", kind
        assert health(argocd_cm, tmp_path, obj) == ("Degraded", "no template"), kind
    composition = claim(SYNCED)
    composition["apiVersion"], composition["kind"] = "fleetplane.io/v1alpha1", "Composition"
    assert health(argocd_cm, tmp_path, composition) == ("Healthy", "ReconcileSuccess")
