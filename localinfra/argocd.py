"""Argo CD on a local worker cluster, run the way Argo CD's own development setup runs it.

One multi-call binary picks its role from ``ARGOCD_BINARY_NAME``; ``ARGOCD_FAKE_IN_CLUSTER`` with a
kubeconfig makes the application controller treat that cluster as ``https://kubernetes.default.svc``.
Its CRDs and config objects come from the released manifests of the version we built.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from localinfra import build, kube, kubectl, paths, ports, process, redis
from localinfra.environment import Environment

NAMESPACE = "argocd"
PART_OF = {"app.kubernetes.io/part-of": "argocd"}


@dataclass(frozen=True)
class ArgoCD:
    cluster: str
    namespace: str
    repo_server: str


def released_objects(kinds: frozenset[str]) -> list[dict[str, Any]]:
    """Objects of the given kinds from Argo CD's released ``install.yaml``."""
    docs = yaml.safe_load_all((build.argocd_manifests_dir() / "install.yaml").read_text())
    return [d for d in docs if d and d.get("kind") in kinds]


def config_objects(namespace: str = NAMESPACE, reconcile_seconds: int = 30) -> list[dict[str, Any]]:
    """The namespace, Argo CD's ConfigMaps and Secrets as released, and the `default` AppProject."""
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    ]
    for obj in released_objects(frozenset({"ConfigMap", "Secret"})):
        obj["metadata"]["namespace"] = namespace
        obj["metadata"].setdefault("labels", {}).update(PART_OF)
        if obj["metadata"]["name"] == "argocd-cm":
            # Git polling period: the source documents' cases are about reacting to changes.
            obj["data"] = {**(obj.get("data") or {}), "timeout.reconciliation": f"{reconcile_seconds}s"}
        objects.append(obj)
    objects.append(
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "AppProject",
            "metadata": {"name": "default", "namespace": namespace},
            "spec": {
                "sourceRepos": ["*"],
                "destinations": [{"server": "*", "namespace": "*"}],
                "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
            },
        }
    )
    return objects


def install_crds(cluster: kube.Cluster) -> None:
    crds = sorted(p for p in (build.argocd_manifests_dir() / "crds").glob("*-crd.yaml"))
    # Server-side apply: the ApplicationSet CRD overflows client-side apply's annotation.
    kubectl.apply_files(cluster.kubeconfig, *crds)
    kubectl.wait_established(
        cluster.kubeconfig,
        "applications.argoproj.io",
        "applicationsets.argoproj.io",
        "appprojects.argoproj.io",
    )


def start(env: Environment, cluster: kube.Cluster, *, namespace: str = NAMESPACE) -> ArgoCD:
    """Install Argo CD's CRDs and configuration on the cluster, then run its components."""
    install_crds(cluster)
    kubectl.apply(cluster.kubeconfig, config_objects(namespace))
    return start_processes(env, cluster, namespace=namespace)


def is_running(env: Environment, cluster: str) -> bool:
    names = (
        f"{cluster}/argocd-redis",
        f"{cluster}/argocd-repo-server",
        f"{cluster}/argocd-application-controller",
    )
    return all(n in env.processes and process.is_alive(env.processes[n]) for n in names)


def start_processes(env: Environment, cluster: kube.Cluster, *, namespace: str = NAMESPACE) -> ArgoCD:
    """Run Argo CD's components (redis, repo-server, application-controller) against a cluster that
    already holds its CRDs and configuration (applied by ``start`` or by a composition)."""
    folder = env.path("clusters", cluster.name, "argocd")
    for sub in ("tls", "ssh", "gpg", "plugins", "home"):
        (folder / sub).mkdir(exist_ok=True)
    kubeconfig = kube.with_namespace(cluster.kubeconfig, namespace, folder / "kubeconfig")
    redis_port = redis.start(env, f"{cluster.name}/argocd-redis")
    common_env = {
        "ARGOCD_FAKE_IN_CLUSTER": "true",
        "KUBECONFIG": str(kubeconfig),
        "ARGOCD_TLS_DATA_PATH": str(folder / "tls"),
        "ARGOCD_SSH_DATA_PATH": str(folder / "ssh"),
        "ARGOCD_GNUPGHOME": str(folder / "gpg"),
        "ARGOCD_GPG_ENABLED": "false",
        "ARGOCD_PLUGINSOCKFILEPATH": str(folder / "plugins"),
        "HOME": str(folder / "home"),
        "PATH": f"{build.argocd_helpers_dir()}:{os.environ.get('PATH', '')}",
    }
    binary = str(paths.bin_dir() / "argocd")
    repo_port, repo_metrics = ports.free_port(), ports.free_port()
    repo = env.add_process(
        process.spawn(
            f"{cluster.name}/argocd-repo-server",
            [
                binary,
                "--loglevel",
                "warn",
                "--address",
                "127.0.0.1",
                "--port",
                str(repo_port),
                "--metrics-address",
                "127.0.0.1",
                "--metrics-port",
                str(repo_metrics),
                "--redis",
                f"127.0.0.1:{redis_port}",
            ],
            folder / "repo-server.log",
            env={**common_env, "ARGOCD_BINARY_NAME": "argocd-repo-server"},
        )
    )
    process.wait_until(repo, lambda: ports.is_listening(repo_port), timeout=60, what="listening")
    metrics = ports.free_port()
    controller = env.add_process(
        process.spawn(
            f"{cluster.name}/argocd-application-controller",
            [
                binary,
                "--loglevel",
                "warn",
                "--kubeconfig",
                str(kubeconfig),
                "--namespace",
                namespace,
                "--redis",
                f"127.0.0.1:{redis_port}",
                "--repo-server",
                f"127.0.0.1:{repo_port}",
                "--metrics-port",
                str(metrics),
                "--status-processors",
                "4",
                "--operation-processors",
                "2",
            ],
            folder / "application-controller.log",
            env={**common_env, "ARGOCD_BINARY_NAME": "argocd-application-controller"},
        )
    )
    process.wait_until(controller, lambda: ports.is_listening(metrics), timeout=60, what="serving metrics")
    repo_addr = f"127.0.0.1:{repo_port}"
    env.set_endpoint(
        f"argocd/{cluster.name}",
        namespace=namespace,
        repo_server=repo_addr,
        controller_metrics=f"127.0.0.1:{metrics}",
    )
    return ArgoCD(cluster.name, namespace, repo_addr)


def kubeconfig_for(env: Environment, cluster: str) -> Path:
    return env.root / "clusters" / cluster / "argocd" / "kubeconfig"
