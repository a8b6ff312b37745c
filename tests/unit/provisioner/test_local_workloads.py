"""What the local provider runs in place of a kubelet, and the status it writes back.

Cases: known components are recognised by their name label (Argo CD's three, the Maestro agent),
anything else is not; the agent's container command runs as our own ``fleetplane`` with the local
kubeconfig in place of the in-cluster path, and its health and metrics ports on loopback ports of
its own, kept from its running command (new ones only for a port it did not have); a container
that runs something else is refused with
the reason; the status patch reads like a Deployment controller's (ready replicas, Available); the
agent runs with its Deployment's ServiceAccount token, made once and renewed at half its life.
"""

from __future__ import annotations

import asyncio
import base64
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from localinfra import kube
from localinfra.environment import Environment
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


def test_the_agent_runs_with_the_identity_folder_issued_here() -> None:
    command = ["fleetplane", "maestro", "agent", "--cluster", "c1", "--tls-dir", lw.AGENT_TLS_DIR]
    argv = lw.agent_argv(_deployment("maestro-agent", command), Path("/k"), Path("/tmp/ids/cluster-c1"))
    assert argv[-2:] == ["--tls-dir", "/tmp/ids/cluster-c1"]


def test_the_agents_ports_are_loopback_ports_of_its_own_kept_while_it_is_replaced() -> None:
    pod = ["--health-host", "0.0.0.0", "--health-port", "8080", "--metrics-host", "0.0.0.0"]
    command = ["fleetplane", "maestro", "agent", "--cluster", "c1", *pod, "--metrics-port", "9090"]
    deployment = _deployment("maestro-agent", command)
    first = lw.agent_ports(deployment)
    assert set(first) == {"--health-port", "--metrics-port"}
    assert len(set(first.values())) == 2 and not {8080, 9090} & set(first.values())
    argv = lw.agent_argv(deployment, Path("/k"), local_ports=first)
    assert argv[-8:] == [
        "--health-host", "127.0.0.1", "--health-port", str(first["--health-port"]),
        "--metrics-host", "127.0.0.1", "--metrics-port", str(first["--metrics-port"]),
    ]  # fmt: skip
    assert lw.agent_ports(deployment, argv) == first

    without_metrics = _deployment("maestro-agent", command[:-2])
    kept = lw.agent_ports(without_metrics, argv)
    assert kept == {"--health-port": first["--health-port"]}
    assert "--metrics-port" not in lw.agent_argv(without_metrics, Path("/k"), local_ports=kept)


def test_the_agent_mounts_its_identity_secret_as_a_kubelet_would(tmp_path: Path) -> None:
    """The TLS Secret's keys become 0600 files of one folder; an unchanged Secret leaves them be,
    a renewed one replaces them (the agent notices the new files)."""
    workloads = lw.LocalWorkloads(Environment(tmp_path))
    secret = {
        "data": {
            k: base64.b64encode(v.encode()).decode() for k, v in {"tls.crt": "C1", "tls.key": "K1"}.items()
        }
    }
    folder = workloads._mount_secret("c1", secret)
    assert (folder / "tls.crt").read_text() == "C1" and stat.S_IMODE(
        (folder / "tls.key").stat().st_mode
    ) == 0o600
    before = (folder / "tls.key").stat().st_mtime_ns
    assert workloads._mount_secret("c1", secret) == folder
    assert (folder / "tls.key").stat().st_mtime_ns == before, "an unchanged Secret rewrites nothing"
    renewed = {"data": {**secret["data"], "tls.crt": base64.b64encode(b"C2").decode()}}
    workloads._mount_secret("c1", renewed)
    assert (folder / "tls.crt").read_text() == "C2"


def test_the_agent_waits_for_its_identity_secret(tmp_path: Path) -> None:
    command = ["fleetplane", "maestro", "agent", "--tls-dir", lw.AGENT_TLS_DIR]
    deployment = _deployment("maestro-agent", command)
    deployment["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "tls", "mountPath": lw.AGENT_TLS_DIR}
    ]
    deployment["spec"]["template"]["spec"]["volumes"] = [
        {"name": "tls", "secret": {"secretName": "agent-tls"}}
    ]
    assert lw.tls_secret_name(deployment) == "agent-tls"
    cluster = kube.Cluster("c1", "https://127.0.0.1:1", tmp_path / "kubeconfig")
    state = asyncio.run(lw.LocalWorkloads(Environment(tmp_path)).run(cluster, deployment))
    assert not state.ready and "agent-tls" in state.message


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


def test_the_agent_runs_as_its_deployments_service_account() -> None:
    agent = _deployment("maestro-agent")
    agent["metadata"]["namespace"] = "open-cluster-management-agent"
    agent["spec"]["template"]["spec"]["serviceAccountName"] = "maestro-agent"
    assert lw.service_account(agent) == ("open-cluster-management-agent", "maestro-agent")
    assert lw.service_account(_deployment("maestro-agent")) == ("default", "default")


def test_the_agents_token_is_made_once_and_renewed_at_half_its_life(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[tuple[str, str, int]] = []

    def token_kubeconfig(cluster: kube.Cluster, namespace: str, name: str, dest: Path, *, hours: int) -> Path:
        made.append((namespace, name, hours))
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text("token")
        return dest

    monkeypatch.setattr(lw.kube, "token_kubeconfig", token_kubeconfig)
    workloads = lw.LocalWorkloads(Environment(tmp_path))
    cluster = kube.Cluster("c1", "https://127.0.0.1:1", tmp_path / "admin.kubeconfig")
    agent = _deployment("maestro-agent")
    agent["metadata"]["namespace"] = "ocm"
    agent["spec"]["template"]["spec"]["serviceAccountName"] = "maestro-agent"
    path, renewed = workloads.agent_kubeconfig(cluster, agent)
    assert renewed and path == tmp_path / "clusters" / "c1" / "maestro-agent.kubeconfig"
    assert made == [("ocm", "maestro-agent", lw.AGENT_TOKEN_HOURS)]
    assert workloads.agent_kubeconfig(cluster, agent) == (path, False)
    old = path.stat().st_mtime - lw.AGENT_TOKEN_HOURS * 3600 / 2 - 1
    os.utime(path, (old, old))
    assert workloads.agent_kubeconfig(cluster, agent) == (path, True)
    assert len(made) == 2
