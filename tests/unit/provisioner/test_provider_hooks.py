"""The workload hooks of the provider contract, as the reconciler calls them.

Cases: a provider that leaves the hooks alone reads a workload's readiness from its replicas, lets
the drain timeout decide about the agent and stops nothing; the local provider reads a workload it
does not run the same way, and for the agent it runs, waits for the identity Secret the Deployment
mounts (read from the cluster) and writes that into the Deployment's status.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from localinfra.environment import Environment
from provisioner.providers import local_workloads as lw
from provisioner.providers.base import ClusterProvider, ClusterSpec, ClusterState, Phase, replicas_ready
from provisioner.providers.local import LocalProvider


class _Kubelet(ClusterProvider):
    name = "nodes"

    async def ensure(self, spec: ClusterSpec) -> ClusterState:
        return ClusterState(Phase.READY)

    async def delete(self, spec: ClusterSpec) -> ClusterState:
        return ClusterState(Phase.DELETED)


class _Objects:
    """A cluster's API holding nothing; remembers the status patches written."""

    def __init__(self) -> None:
        self.read: list[Mapping[str, Any]] = []
        self.patched: list[Mapping[str, Any]] = []

    async def get(self, obj: Mapping[str, Any]) -> dict[str, Any] | None:
        self.read.append(obj)
        return None

    async def patch_status(self, obj: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
        self.patched.append(patch)
        return dict(obj)


def _deployment(name: str, ready: int | None = None) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "agents", "labels": {lw.NAME_LABEL: name}},
        "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "main"}]}}},
    }
    if ready is not None:
        obj["status"] = {"readyReplicas": ready}
    return obj


@pytest.mark.parametrize(
    ("ready", "want"),
    [
        (None, (False, "0/2 replicas ready")),
        (1, (False, "1/2 replicas ready")),
        (2, (True, "2/2 replicas ready")),
    ],
)
def test_readiness_is_the_ready_replicas(ready: int | None, want: tuple[bool, str]) -> None:
    assert replicas_ready(_deployment("nginx", ready)) == want


def test_a_provider_with_nodes_leaves_its_workloads_to_the_cluster() -> None:
    provider, objects = _Kubelet(), _Objects()
    assert asyncio.run(provider.run_workload("c1", objects, _deployment("maestro-agent", 2))) == (
        True,
        "2/2 replicas ready",
    )
    assert provider.agent_alive("c1")
    provider.stop_agent("c1")
    provider.stop_workloads("c1")
    assert objects.read == objects.patched == []


def test_the_local_provider_reads_a_workload_it_does_not_run_like_any_cluster(tmp_path: Path) -> None:
    provider, objects = LocalProvider(Environment(tmp_path), "http://127.0.0.1:1"), _Objects()
    assert asyncio.run(provider.run_workload("c1", objects, _deployment("nginx", 1))) == (
        False,
        "1/2 replicas ready",
    )
    assert objects.patched == []
    assert not provider.agent_alive("c1")


def test_the_local_agent_waits_for_the_identity_secret_it_mounts(tmp_path: Path) -> None:
    env = Environment(tmp_path)
    env.set_endpoint("cluster/c1", server="https://127.0.0.1:1", kubeconfig=str(tmp_path / "kubeconfig"))
    provider, objects = LocalProvider(env, "http://127.0.0.1:1"), _Objects()
    agent = _deployment("maestro-agent")
    pod = agent["spec"]["template"]["spec"]
    pod["containers"][0]["volumeMounts"] = [{"name": "tls", "mountPath": lw.AGENT_TLS_DIR}]
    pod["volumes"] = [{"name": "tls", "secret": {"secretName": "agent-tls"}}]

    ready, message = asyncio.run(provider.run_workload("c1", objects, agent))

    assert not ready and "agent-tls" in message
    assert objects.read == [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "agent-tls", "namespace": "agents"}}
    ]
    (patch,) = objects.patched
    assert patch["status"]["readyReplicas"] == 0
    assert patch["status"]["conditions"][0]["status"] == "False"
