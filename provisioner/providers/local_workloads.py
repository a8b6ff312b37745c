"""Workloads the ``local`` provider runs for a worker cluster, standing in for its kubelet.

A local cluster has no nodes, so the Deployments and StatefulSets a composition applies to it
would never run. The ones we know — Argo CD's application-controller, repo-server and redis, and
the Maestro agent — run as supervised local processes instead (named ``<cluster>/<component>``
in the provider's environment), and their readiness is written back into the object's status as
a kubelet-backed controller would (replicas, readyReplicas, an ``Available`` condition), so the
provisioner reads readiness the same way on every provider. Anything else is reported as not
runnable here, with the list of what is.

The agent's health and metrics ports (the pod's, on all its addresses) become loopback ports of
their own, chosen once per cluster and kept while its process is replaced, so that a probe or a
scraper finds it where it was; its command line names them.

The agent runs as its Deployment's ServiceAccount, as a kubelet would run it: it gets a kubeconfig
with that account's token (TokenRequest, valid ``AGENT_TOKEN_HOURS``; renewed, and the agent
restarted, once half of that has passed), so it holds exactly the composition's RBAC rules and
never the cluster's admin certificate. Its identity is the TLS Secret its Deployment mounts (the
provisioner issues it: ``provisioner.identity``), written into a local folder as a kubelet
projects a Secret volume, and rewritten when the Secret is renewed.
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localinfra import argocd, kube, ports, process
from localinfra.environment import Environment
from localinfra.errors import InfraError
from localinfra.tuning import TUNED, WorkerTuning
from provisioner.providers.base import WORKLOAD_KINDS
from trust import files

NAME_LABEL = "app.kubernetes.io/name"
ARGOCD_COMPONENTS = frozenset({"argocd-application-controller", "argocd-repo-server", "argocd-redis"})
AGENT = "maestro-agent"
#: where the composition's agent Deployment mounts its kubeconfig; replaced by the local file
AGENT_KUBECONFIG = "/var/run/fleetplane/kubeconfig"
#: where it mounts its identity (a TLS Secret); replaced by the local folder holding its keys
AGENT_TLS_DIR = "/var/run/fleetplane/tls"
AGENT_TLS_VOLUME = "tls"
#: the agent's plain HTTP ports, each given a loopback port of its own here
AGENT_PORT_FLAGS = ("--health-port", "--metrics-port")
_HOST_FLAGS = ("--health-host", "--metrics-host")
AGENT_TOKEN_HOURS = 24
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


def _fleetplane_command() -> list[str]:
    beside = Path(sys.executable).parent / "fleetplane"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("fleetplane")
    return [found] if found else [sys.executable, "-m", "fleetplane.cli"]


def tls_secret_name(obj: Mapping[str, Any]) -> str | None:
    """The Secret the agent's Deployment mounts at ``AGENT_TLS_DIR``, if any."""
    pod = (((obj.get("spec") or {}).get("template") or {}).get("spec")) or {}
    volumes = {v.get("name"): v for v in pod.get("volumes") or []}
    for container in pod.get("containers") or []:
        for mount in container.get("volumeMounts") or []:
            if mount.get("mountPath") == AGENT_TLS_DIR:
                secret = (volumes.get(mount.get("name")) or {}).get("secret") or {}
                return str(secret["secretName"]) if secret.get("secretName") else None
    return None


def service_account(obj: Mapping[str, Any]) -> tuple[str, str]:
    """``(namespace, name)`` of the ServiceAccount a Deployment's pods run as."""
    namespace = str((obj.get("metadata") or {}).get("namespace") or "default")
    pod = (((obj.get("spec") or {}).get("template") or {}).get("spec")) or {}
    return namespace, str(pod.get("serviceAccountName") or "default")


def agent_argv(
    obj: Mapping[str, Any],
    kubeconfig: Path,
    tls_dir: Path | None = None,
    local_ports: Mapping[str, int] | None = None,
) -> list[str]:
    """The agent container's command, run here: our own ``fleetplane``, the local kubeconfig, the
    local identity folder, and ``local_ports`` (by flag, of ``AGENT_PORT_FLAGS``) on loopback."""
    containers = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    if not containers:
        raise ValueError("the maestro-agent Deployment has no container")
    command: Sequence[str] = [*(containers[0].get("command") or []), *(containers[0].get("args") or [])]
    if not command or Path(command[0]).name != "fleetplane":
        raise ValueError(
            "the maestro-agent container must run `fleetplane maestro agent ...` for the local provider "
            f"to run it; it runs {command[:1]}"
        )
    local = {AGENT_KUBECONFIG: str(kubeconfig)}
    if tls_dir is not None:
        local[AGENT_TLS_DIR] = str(tls_dir)
    argv = [local.get(str(a), str(a)) for a in command[1:]]
    for i, flag in enumerate(argv[:-1]):
        if flag in _HOST_FLAGS:
            argv[i + 1] = "127.0.0.1"
        elif flag in (local_ports or {}):
            argv[i + 1] = str((local_ports or {})[flag])
    return _fleetplane_command() + argv


def agent_ports(obj: Mapping[str, Any], running: Sequence[str] = ()) -> dict[str, int]:
    """A loopback port for each of ``AGENT_PORT_FLAGS`` the agent's container asks for: the one its
    ``running`` command has, else a free one."""
    containers = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    asked = [*(containers[0].get("command") or []), *(containers[0].get("args") or [])] if containers else []
    had = list(running)
    found = {}
    for flag in AGENT_PORT_FLAGS:
        if flag in asked:
            given = had[had.index(flag) + 1] if flag in had[:-1] else ""
            found[flag] = int(given) if given.isdigit() else ports.free_port()
    return found


class LocalWorkloads:
    def __init__(self, env: Environment, tuning: WorkerTuning = TUNED) -> None:
        self.env = env
        self.tuning = tuning

    async def run(
        self, cluster: kube.Cluster, obj: Mapping[str, Any], *, tls_secret: Mapping[str, Any] | None = None
    ) -> WorkloadState:
        """Make sure the object's process runs (started, or restarted when its command changed).
        The agent mounts its identity, ``tls_secret`` (the TLS Secret its Deployment names, read
        from its cluster), as a kubelet would: the Secret's keys become files of the folder its
        ``--tls-dir`` points at, rewritten when the Secret changes (a renewed certificate)."""
        name = component(obj)
        if name is None:
            known = ", ".join(sorted(ARGOCD_COMPONENTS | {AGENT}))
            return WorkloadState(
                False, f"local clusters have no kubelet: the local provider runs only {known}"
            )
        try:
            if name in ARGOCD_COMPONENTS:
                return await asyncio.to_thread(self._argocd, cluster)
            if tls_secret is None:
                wanted = tls_secret_name(obj) or "(none: the Deployment mounts no TLS Secret)"
                return WorkloadState(False, f"waiting for the agent's identity Secret {wanted}")
            tls = await asyncio.to_thread(self._mount_secret, cluster.name, tls_secret)
            return await asyncio.to_thread(self._agent, cluster, obj, tls)
        except (InfraError, ValueError) as exc:
            return WorkloadState(False, str(exc))

    def _argocd(self, cluster: kube.Cluster) -> WorkloadState:
        if not argocd.is_running(self.env, cluster.name):
            self.env.stop_processes(f"{cluster.name}/argocd-")
            argocd.start_processes(self.env, cluster, tuning=self.tuning)
        pid = self.env.processes[f"{cluster.name}/argocd-application-controller"].pid
        return WorkloadState(True, "Argo CD runs as local processes", pid)

    def _mount_secret(self, cluster: str, secret: Mapping[str, Any]) -> Path:
        """The Secret's keys as files (0600) of the agent's TLS folder; a file is replaced only when
        its content changed, so an unchanged Secret leaves the agent's files alone."""
        folder = self.env.path("clusters", cluster, "volumes", AGENT_TLS_VOLUME)
        folder.chmod(0o700)
        for key, value in (secret.get("data") or {}).items():
            content = base64.b64decode(value)
            target = folder / key
            if not target.is_file() or target.read_bytes() != content:
                files.write_private(target, content)
        return folder

    def agent_kubeconfig(self, cluster: kube.Cluster, obj: Mapping[str, Any]) -> tuple[Path, bool]:
        """The agent's own kubeconfig (its ServiceAccount's token) and whether it was just (re)made."""
        dest = self.env.root / "clusters" / cluster.name / f"{AGENT}.kubeconfig"
        try:
            age = time.time() - dest.stat().st_mtime
        except FileNotFoundError:
            age = None
        if age is not None and age < AGENT_TOKEN_HOURS * 3600 / 2:
            return dest, False
        namespace, account = service_account(obj)
        kube.token_kubeconfig(cluster, namespace, account, dest, hours=AGENT_TOKEN_HOURS)
        return dest, True

    def _agent(self, cluster: kube.Cluster, obj: Mapping[str, Any], tls_dir: Path) -> WorkloadState:
        kubeconfig, renewed = self.agent_kubeconfig(cluster, obj)
        key = f"{cluster.name}/{AGENT}"
        record = self.env.processes.get(key)
        argv = agent_argv(obj, kubeconfig, tls_dir, agent_ports(obj, record.argv if record else ()))
        running = record is not None and process.is_alive(record) and list(record.argv) == argv
        if running and record is not None and not renewed:
            return WorkloadState(True, "the Maestro agent runs as a local process", record.pid)
        self.env.stop_processes(key)
        log = self.env.root / "clusters" / cluster.name / "maestro-agent.log"
        record = self.env.add_process(process.spawn(key, argv, log, env=self.tuning.agent_env))
        time.sleep(_SETTLE_SECONDS)  # a wrong flag or an unreachable Kafka ends it at once
        if not process.is_alive(record):
            self.env.stop_processes(key)
            return WorkloadState(False, f"the Maestro agent exited at start: {process.log_tail(log, 5)}")
        return WorkloadState(True, "the Maestro agent runs as a local process", record.pid)

    def stop(self, cluster: str) -> list[str]:
        return self.env.stop_processes(f"{cluster}/argocd-") + self.env.stop_processes(f"{cluster}/{AGENT}")

    def stop_agent(self, cluster: str) -> list[str]:
        return self.env.stop_processes(f"{cluster}/{AGENT}")

    def agent_alive(self, cluster: str) -> bool:
        record = self.env.processes.get(f"{cluster}/{AGENT}")
        return record is not None and process.is_alive(record)


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
