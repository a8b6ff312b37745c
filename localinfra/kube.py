"""Local Kubernetes clusters: one kube-apiserver (and a controller manager) per cluster.

All clusters of an environment share one etcd, each under its own ``--etcd-prefix``. There is no
kubelet: workloads a cluster needs (Argo CD, the Maestro agent) run as local processes beside it.
The controller manager runs only the controllers that make the API behave as users expect of a
real cluster: garbage collection of owned objects and namespace deletion.
"""

from __future__ import annotations

import base64
import shutil
import ssl
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from localinfra import etcd, kubectl, paths, pki, ports, process
from localinfra.environment import Environment
from localinfra.errors import InfraError
from localinfra.tuning import UNTUNED, WorkerTuning
from trust import files

SERVICE_CIDR = "10.96.0.0/16"


@dataclass(frozen=True)
class Cluster:
    name: str
    server: str
    kubeconfig: Path

    @classmethod
    def from_env(cls, env: Environment, name: str) -> Cluster:
        ep = env.endpoint(f"cluster/{name}")
        return cls(name=name, server=ep["server"], kubeconfig=Path(ep["kubeconfig"]))


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def kubeconfig_dict(
    name: str, server: str, ca: Path, client: pki.KeyPair, namespace: str | None = None
) -> dict[str, Any]:
    context: dict[str, Any] = {"cluster": name, "user": f"{name}-admin"}
    if namespace:
        context["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": _b64(ca)}}],
        "users": [
            {
                "name": f"{name}-admin",
                "user": {"client-certificate-data": _b64(client.cert), "client-key-data": _b64(client.key)},
            }
        ],
        "contexts": [{"name": name, "context": context}],
        "current-context": name,
    }


def write_kubeconfig(path: Path, config: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return files.write_private(path, yaml.safe_dump(config, sort_keys=False))


def service_account_kubeconfig(
    cluster: Cluster, namespace: str, name: str, dest: Path, *, cluster_role: str = "cluster-admin"
) -> Path:
    """A kubeconfig for ServiceAccount ``namespace/name`` (created, bound to ``cluster_role``) with a
    token from the TokenRequest API: the identity an operator has inside a cluster. The API server
    caches a token's authentication, where a client certificate's chain is verified per request."""
    kubectl.apply(
        cluster.kubeconfig,
        [
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": namespace},
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": f"{namespace}-{name}"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": cluster_role,
                },
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
            },
        ],
    )
    return token_kubeconfig(cluster, namespace, name, dest, hours=48)


def token_kubeconfig(cluster: Cluster, namespace: str, name: str, dest: Path, *, hours: int) -> Path:
    """A kubeconfig (mode 0600) for the existing ServiceAccount ``namespace/name`` with a token from
    the TokenRequest API, valid ``hours``: the account's own identity and nothing more (the admin
    kubeconfig only asks for the token)."""
    token = kubectl.run(
        cluster.kubeconfig, "create", "token", name, "-n", namespace, "--duration", f"{hours}h"
    )
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    user = f"{namespace}-{name}"
    config["users"] = [{"name": user, "user": {"token": token.strip()}}]
    config["contexts"][0]["context"]["user"] = user
    return write_kubeconfig(dest, config)


def with_namespace(kubeconfig: Path, namespace: str, dest: Path) -> Path:
    """A copy of a kubeconfig whose context defaults to ``namespace`` (Argo CD reads it from there)."""
    config = yaml.safe_load(kubeconfig.read_text())
    config["contexts"][0]["context"]["namespace"] = namespace
    return write_kubeconfig(dest, config)


def _get_ok(url: str, ca: Path, client: pki.KeyPair) -> bool:
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.load_cert_chain(str(client.cert), str(client.key))
    with urllib.request.urlopen(url, context=ctx, timeout=3) as resp:
        return bool(resp.status == 200)


def feature_gates_flag(gates: Mapping[str, bool]) -> list[str]:
    """``--feature-gates A=false,B=true`` (sorted, so the command line is stable), or nothing."""
    if not gates:
        return []
    return ["--feature-gates", ",".join(f"{name}={str(on).lower()}" for name, on in sorted(gates.items()))]


def start(
    env: Environment,
    name: str,
    etcd_url: str,
    *,
    controller_manager: bool = True,
    go_runtime: Mapping[str, str] | None = None,
    feature_gates: Mapping[str, bool] | None = None,
    tuning: WorkerTuning | None = None,
) -> Cluster:
    """A kube-apiserver on ``etcd_url`` (and its controller-manager); ``go_runtime`` is the API
    server's Go runtime environment (``GOGC``, ``GOMEMLIMIT``) and ``feature_gates`` its
    ``--feature-gates``, for a hub sized for its load; ``tuning`` adds a worker's memory settings
    (``localinfra.tuning``)."""
    tuning = tuning or UNTUNED
    folder = env.path("clusters", name)
    ca = pki.ensure_ca(env.path("pki"))
    port = ports.free_port()
    server = f"https://127.0.0.1:{port}"
    serving = pki.issue(
        ca,
        folder,
        "apiserver",
        cn="kube-apiserver",
        server=True,
        hosts=(
            "127.0.0.1",
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "10.96.0.1",
        ),
    )
    admin = pki.issue(ca, folder, "admin", cn=f"{name}-admin", org="system:masters")
    sa = pki.service_account_keys(folder)
    argv = [
        str(paths.bin_dir() / "kube-apiserver"),
        "--etcd-servers",
        etcd_url,
        "--etcd-prefix",
        f"/clusters/{name}",
        "--bind-address",
        "127.0.0.1",
        "--advertise-address",
        "127.0.0.1",
        "--secure-port",
        str(port),
        "--tls-cert-file",
        str(serving.cert),
        "--tls-private-key-file",
        str(serving.key),
        "--client-ca-file",
        str(ca.cert),
        "--service-account-issuer",
        f"https://kubernetes.default.svc/{name}",
        "--service-account-key-file",
        str(sa.cert),
        "--service-account-signing-key-file",
        str(sa.key),
        "--service-cluster-ip-range",
        SERVICE_CIDR,
        "--authorization-mode",
        "RBAC",
        "--allow-privileged=true",
        # No kubelet, so no pods to admit; the endpoints of `kubernetes` would point at one shared
        # loopback address for every cluster, so leave them out.
        "--disable-admission-plugins",
        "ServiceAccount",
        "--endpoint-reconciler-type",
        "none",
        "--enable-priority-and-fairness=false",
        # Served to cluster admins only: `kubectl get --raw /debug/pprof/profile` shows where a
        # hub's CPU goes under a benchmark.
        "--profiling=true",
        "-v",
        "0",
    ]
    argv += feature_gates_flag(feature_gates or {})
    record = env.add_process(
        process.spawn(
            f"{name}/kube-apiserver",
            argv,
            folder / "kube-apiserver.log",
            env={**tuning.apiserver_env, **(go_runtime or {})},
        )
    )
    kubeconfig = write_kubeconfig(folder / "kubeconfig", kubeconfig_dict(name, server, ca.cert, admin))
    process.wait_until(
        record, lambda: _get_ok(f"{server}/readyz", ca.cert, admin), timeout=120, what="ready (/readyz)"
    )
    if controller_manager:
        _start_controller_manager(env, name, folder, kubeconfig, sa, tuning)
    env.set_endpoint(f"cluster/{name}", server=server, kubeconfig=str(kubeconfig))
    return Cluster(name, server, kubeconfig)


def is_running(env: Environment, name: str) -> bool:
    """Whether a cluster of this environment has its API server process alive (not whether it answers)."""
    record = env.processes.get(f"{name}/kube-apiserver")
    return record is not None and process.is_alive(record) and f"cluster/{name}" in env.endpoints


def delete(env: Environment, name: str, etcd_url: str) -> list[str]:
    """Stop a cluster's processes (and the workloads run for it, named ``<name>/...``), then remove
    its data from the shared etcd and its folder; returns problems. Idempotent."""
    problems = env.stop_processes(f"{name}/")
    env.remove_endpoint(f"cluster/{name}")
    etcd.delete_prefix(etcd_url, f"/clusters/{name}/")
    shutil.rmtree(env.root / "clusters" / name, ignore_errors=True)
    return problems


def _start_controller_manager(
    env: Environment, name: str, folder: Path, kubeconfig: Path, sa: pki.KeyPair, tuning: WorkerTuning
) -> None:
    port = ports.free_port()
    argv = [
        str(paths.bin_dir() / "kube-controller-manager"),
        "--kubeconfig",
        str(kubeconfig),
        "--authentication-kubeconfig",
        str(kubeconfig),
        "--authorization-kubeconfig",
        str(kubeconfig),
        "--bind-address",
        "127.0.0.1",
        "--secure-port",
        str(port),
        "--leader-elect=false",
        "--controllers",
        "garbage-collector-controller,namespace-controller,serviceaccount-controller",
        "--service-account-private-key-file",
        str(sa.key),
        "--use-service-account-credentials=false",
        "-v",
        "0",
    ]
    record = env.add_process(
        process.spawn(
            f"{name}/kube-controller-manager",
            argv,
            folder / "kube-controller-manager.log",
            env=tuning.controller_manager_env,
        )
    )
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    def healthy() -> bool:
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", context=ctx, timeout=3) as resp:
            return bool(resp.status == 200)

    process.wait_until(record, healthy, timeout=60, what="healthy")


def restart_apiserver(
    env: Environment, name: str, *, down_seconds: float = 0.0, timeout: float = 120
) -> None:
    """Stop a cluster's kube-apiserver and start it again as it was (same port, certs, etcd prefix),
    after ``down_seconds``: what an API server upgrade or crash looks like to its clients."""
    key = f"{name}/kube-apiserver"
    old = env.processes.get(key)
    if old is None:
        raise InfraError(f"no {key} recorded in {env.root}", fix="start the cluster with kube.start first")
    process.stop(old)
    time.sleep(down_seconds)
    folder = env.path("clusters", name)
    record = env.add_process(process.spawn(key, old.argv, folder / "kube-apiserver.log"))
    ca, admin = env.root / "pki" / "ca.crt", pki.KeyPair(folder / "admin.crt", folder / "admin.key")
    server = env.endpoint(f"cluster/{name}")["server"]
    process.wait_until(
        record, lambda: _get_ok(f"{server}/readyz", ca, admin), timeout=timeout, what="ready again (/readyz)"
    )
