"""What the local provider runs in place of a kubelet, and the status it writes back.

Cases: known components are recognised by their name label (Argo CD's three, the Maestro agent),
anything else is not; the agent's container command runs as our own ``fleetplane`` with the local
kubeconfig in place of the in-cluster path; a container that runs something else is refused with
the reason; the status patch reads like a Deployment controller's (ready replicas, Available).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from provisioner.providers import local_workloads as lw


def _deployment(name: str, command: list[str] | None = None, replicas: int = 1) -> dict[str, Any]:
    containers = [{"name": "main", "command": command or ["x"]}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {lw.NAME_LABEL: name}, "generation": 3},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": containers}}},
    }


@pytest.mark.parametrize(
    ("obj", "want"),
    [
        (_deployment("argocd-repo-server"), "argocd-repo-server"),
        (
            {**_deployment("argocd-application-controller"), "kind": "StatefulSet"},
            "argocd-application-controller",
        ),
        (_deployment("maestro-agent"), "maestro-agent"),
        (_deployment("nginx"), None),
        ({"kind": "ConfigMap", "metadata": {"name": "maestro-agent"}}, None),
    ],
    ids=["repo-server", "controller-statefulset", "agent", "unknown-deployment", "not-a-workload"],
)
def test_known_components(obj: dict[str, Any], want: str | None) -> None:
    assert lw.component(obj) == want


def test_the_agent_runs_our_fleetplane_with_the_local_kubeconfig() -> None:
    command = ["fleetplane", "maestro", "agent", "--cluster", "c1", "--kubeconfig", lw.AGENT_KUBECONFIG]
    argv = lw.agent_argv(_deployment("maestro-agent", command), Path("/tmp/c1/kubeconfig"))
    assert Path(argv[0]).name in ("fleetplane", "python", "python3") or argv[0].endswith("python")
    assert argv[-6:] == ["maestro", "agent", "--cluster", "c1", "--kubeconfig", "/tmp/c1/kubeconfig"]


def test_an_agent_container_running_something_else_is_refused() -> None:
    with pytest.raises(ValueError, match=r"must run `fleetplane maestro agent"):
        lw.agent_argv(_deployment("maestro-agent", ["/bin/sh", "-c", "sleep 1"]), Path("/k"))


@pytest.mark.parametrize(("ready", "want"), [(True, 2), (False, 0)], ids=["running", "not-runnable"])
def test_status_patch_reads_like_a_deployment_controllers(ready: bool, want: int) -> None:
    state = lw.WorkloadState(ready, "why", pid=42 if ready else 0)
    status = lw.status_patch(_deployment("argocd-redis", replicas=2), state)["status"]
    assert (status["replicas"], status["readyReplicas"], status["availableReplicas"]) == (2, want, want)
    assert status["observedGeneration"] == 3
    available = status["conditions"][0]
    assert available["type"] == "Available"
    assert available["status"] == ("True" if ready else "False")
    assert available["message"] == ("why (pid 42)" if ready else "why")
