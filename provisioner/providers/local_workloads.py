"""Workloads the ``local`` provider runs for a worker cluster, standing in for its kubelet.

A local cluster has no nodes, so the Deployments and StatefulSets a composition applies to it
would never run. The ones we know — Argo CD's application-controller, repo-server and redis, and
the Maestro agent — run as supervised local processes instead (named ``<cluster>/<component>``
in the provider's environment), and their readiness is written back into the object's status as
a kubelet-backed controller would (replicas, readyReplicas, an ``Available`` condition), so the
provisioner reads readiness the same way on every provider. Anything else is reported as not
runnable here, with the list of what is.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localinfra import argocd, kube, process
from localinfra.environment import Environment
from localinfra.errors import InfraError

NAME_LABEL = "app.kubernetes.io/name"
ARGOCD_COMPONENTS = frozenset({"argocd-application-controller", "argocd-repo-server", "argocd-redis"})
AGENT = "maestro-agent"
#: where the composition's agent Deployment mounts its kubeconfig; replaced by the local file
AGENT_KUBECONFIG = "/var/run/fleetplane/kubeconfig"
WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet"})
_SETTLE_SECONDS = 1.0


@dataclass(frozen=True)
class WorkloadState:
    ready: bool
    message: str
    pid: int = 0


def component(obj: Mapping[str, Any]) -> str | None:
    """The known component an object runs, or None when it is no workload of ours."""
    if obj.get("kind") not in WORKLOAD_KINDS:
        return None
    labels = (obj.get("metadata") or {}).get("labels") or {}
    name = labels.get(NAME_LABEL) or (obj.get("metadata") or {}).get("name")
    return name if name in ARGOCD_COMPONENTS or name == AGENT else None


def is_workload(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") in WORKLOAD_KINDS


def _fleetplane_command() -> list[str]:
    beside = Path(sys.executable).parent / "fleetplane"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("fleetplane")
    return [found] if found else [sys.executable, "-m", "fleetplane.cli"]


def agent_argv(obj: Mapping[str, Any], kubeconfig: Path) -> list[str]:
    """The agent container's command, run here: our own ``fleetplane`` and the local kubeconfig."""
    containers = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    if not containers:
        raise ValueError("the maestro-agent Deployment has no container")
    command: Sequence[str] = [*(containers[0].get("command") or []), *(containers[0].get("args") or [])]
    if not command or Path(command[0]).name != "fleetplane":
        raise ValueError(
            "the maestro-agent container must run `fleetplane maestro agent ...` for the local provider "
            f"to run it; it runs {command[:1]}"
        )
    argv = _fleetplane_command() + [str(kubeconfig) if a == AGENT_KUBECONFIG else str(a) for a in command[1:]]
    return argv


class LocalWorkloads:
    def __init__(self, env: Environment) -> None:
        self.env = env

    async def run(self, cluster: kube.Cluster, obj: Mapping[str, Any]) -> WorkloadState:
        """Make sure the object's process runs (started, or restarted when its command changed)."""
        name = component(obj)
        if name is None:
            known = ", ".join(sorted(ARGOCD_COMPONENTS | {AGENT}))
            return WorkloadState(
                False, f"local clusters have no kubelet: the local provider runs only {known}"
            )
        try:
            if name in ARGOCD_COMPONENTS:
                return await asyncio.to_thread(self._argocd, cluster)
            return await asyncio.to_thread(self._agent, cluster, agent_argv(obj, cluster.kubeconfig))
        except (InfraError, ValueError) as exc:
            return WorkloadState(False, str(exc))

    def _argocd(self, cluster: kube.Cluster) -> WorkloadState:
        if not argocd.is_running(self.env, cluster.name):
            self.env.stop_processes(f"{cluster.name}/argocd-")
            argocd.start_processes(self.env, cluster)
        pid = self.env.processes[f"{cluster.name}/argocd-application-controller"].pid
        return WorkloadState(True, "Argo CD runs as local processes", pid)

    def _agent(self, cluster: kube.Cluster, argv: list[str]) -> WorkloadState:
        key = f"{cluster.name}/{AGENT}"
        record = self.env.processes.get(key)
        if record is not None and process.is_alive(record) and list(record.argv) == argv:
            return WorkloadState(True, "the Maestro agent runs as a local process", record.pid)
        self.env.stop_processes(key)
        log = self.env.root / "clusters" / cluster.name / "maestro-agent.log"
        record = self.env.add_process(process.spawn(key, argv, log))
        time.sleep(_SETTLE_SECONDS)  # a wrong flag or an unreachable Kafka ends it at once
        if not process.is_alive(record):
            self.env.stop_processes(key)
            return WorkloadState(False, f"the Maestro agent exited at start: {process.log_tail(log, 5)}")
        return WorkloadState(True, "the Maestro agent runs as a local process", record.pid)

    def stop(self, cluster: str) -> list[str]:
        return self.env.stop_processes(f"{cluster}/argocd-") + self.env.stop_processes(f"{cluster}/{AGENT}")

    def stop_agent(self, cluster: str) -> list[str]:
        return self.env.stop_processes(f"{cluster}/{AGENT}")


def status_patch(obj: Mapping[str, Any], state: WorkloadState) -> dict[str, Any]:
    """The status a Deployment/StatefulSet controller would write for this state."""
    replicas = int((obj.get("spec") or {}).get("replicas") or 1)
    ready = replicas if state.ready else 0
    return {
        "status": {
            "observedGeneration": (obj.get("metadata") or {}).get("generation") or 1,
            "replicas": replicas,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "updatedReplicas": ready,
            "conditions": [
                {
                    "type": "Available",
                    "status": "True" if state.ready else "False",
                    "reason": "LocalProcess" if state.ready else "NotRunnable",
                    "message": state.message + (f" (pid {state.pid})" if state.pid else ""),
                }
            ],
        }
    }
