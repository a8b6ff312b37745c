"""Argo CD on a local worker cluster, run the way Argo CD's own development setup runs it.

One multi-call binary picks its role from ``ARGOCD_BINARY_NAME``; ``ARGOCD_FAKE_IN_CLUSTER`` with a
kubeconfig makes the application controller treat that cluster as ``https://kubernetes.default.svc``.
Its CRDs and config objects come from the released manifests of the version we built.

Its components talk over loopback TCP, and every hop is authenticated and encrypted: each component
has its own certificate from the environment's CA (a service identity ``argocd-<cluster>-<component>``);
Redis takes TLS alone, a client certificate and its password (``localinfra.redis``); the repo-server
serves gRPC over TLS and requires a client certificate from that CA (``--client-ca-path``: without the
file Argo CD would silently skip mTLS), and the application controller verifies the repo-server
against the CA (``--repo-server-ca-cert-path``: without it Argo CD skips verification) and presents
its own certificate.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from localinfra import build, kube, kubectl, paths, pki, ports, process, redis
from localinfra.environment import Environment
from localinfra.tuning import UNTUNED, WorkerTuning
from trust import files
from trust.identity import Identity

NAMESPACE = "argocd"
PART_OF = {"app.kubernetes.io/part-of": "argocd"}
#: the names the repo-server's certificate is issued for: its clients dial it on loopback
REPO_SERVER_HOSTS = ("127.0.0.1", "localhost")
_COMMON_NAME_MAX = 64


@dataclass(frozen=True)
class ArgoCD:
    cluster: str
    namespace: str
    repo_server: str
    #: the CA the repo-server's certificate comes from and its clients' certificates must come from
    repo_server_ca: Path
    redis: redis.Redis


def identity(cluster: str, component: str) -> Identity:
    """The identity a component of a cluster's Argo CD runs as: one per component and cluster, so
    a certificate taken from one process speaks for that process alone.

    The name is its certificate's common name, which X.509 bounds at 64 characters while a cluster's
    name may have 63: a long cluster name is cut and a hash of the whole name keeps it unique.
    """
    name = f"argocd-{cluster}-{component}"
    if len(name) > _COMMON_NAME_MAX:
        digest = hashlib.sha256(cluster.encode()).hexdigest()[:8]
        room = _COMMON_NAME_MAX - len(f"argocd--{digest}-{component}")
        name = f"argocd-{cluster[:room].rstrip('-.')}-{digest}-{component}"
    return Identity.service(name)


def redis_client_flags(cache: redis.Redis, tls: files.TLSFiles) -> list[str]:
    """An Argo CD component's flags for its Redis: TLS verified against the CA, its own certificate.
    (The password is not a flag: ``REDIS_CREDS_DIR_PATH`` names the folder it is read from.)"""
    assert tls.cert is not None and tls.key is not None
    return [
        "--redis",
        cache.address,
        "--redis-use-tls",
        "--redis-ca-certificate",
        str(cache.ca),
        "--redis-client-certificate",
        str(tls.cert),
        "--redis-client-key",
        str(tls.key),
    ]


def _link(link: Path, target: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target, target_is_directory=True)


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
            # Git polling period: the lifecycle cases are about reacting to changes.
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


def start(
    env: Environment, cluster: kube.Cluster, *, namespace: str = NAMESPACE, tuning: WorkerTuning = UNTUNED
) -> ArgoCD:
    """Install Argo CD's CRDs and configuration on the cluster, then run its components."""
    install_crds(cluster)
    kubectl.apply(cluster.kubeconfig, config_objects(namespace))
    return start_processes(env, cluster, namespace=namespace, tuning=tuning)


def is_running(env: Environment, cluster: str, *, role: str = "argocd") -> bool:
    """Whether the Argo CD ``role`` of ``cluster`` has its processes alive (its own Redis aside
    when it shares another's)."""
    names = [f"{cluster}/{role}-repo-server", f"{cluster}/{role}-application-controller"]
    if role == "argocd":
        names.append(f"{cluster}/argocd-redis")
    return all(n in env.processes and process.is_alive(env.processes[n]) for n in names)


def host_environment(folder: Path, kubeconfig: Path) -> dict[str, str]:
    """What Argo CD's components find in their pods, as a host process's environment: the folders
    its image holds (TLS and SSH data, GnuPG, plugin sockets, a home) under ``folder``, its helper
    binaries on PATH, and the cluster it runs in (``kubeconfig``, taken as the in-cluster one)."""
    for sub in ("tls", "ssh", "gpg", "plugins", "home"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    return {
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


@dataclass(frozen=True)
class _Common:
    """What every component of one cluster's Argo CD shares: its folder, its namespaced
    kubeconfig, its Redis and the environment its processes get."""

    folder: Path
    kubeconfig: Path
    cache: redis.Redis
    env: dict[str, str]


def _common(
    env: Environment,
    cluster: kube.Cluster,
    namespace: str,
    role: str = "argocd",
    cache: redis.Redis | None = None,
) -> _Common:
    """``role`` names the folder and the processes (``<cluster>/<role>-...``), so that two Argo CDs
    can run for one cluster; ``cache`` is a Redis already running (None: start one)."""
    folder = env.path("clusters", cluster.name, role)
    kubeconfig = kube.with_namespace(cluster.kubeconfig, namespace, folder / "kubeconfig")
    if cache is None:
        cache = redis.start(
            env, f"{cluster.name}/{role}-redis", identity(cluster.name, _component(role, "redis"))
        )
    return _Common(
        folder,
        kubeconfig,
        cache,
        {
            **host_environment(folder, kubeconfig),
            # The password is read from the file `auth` in this folder, as from a mounted Secret: a
            # REDIS_PASSWORD variable would be inherited by every git, helm and kustomize the
            # repo-server runs (it hands them its whole environment).
            "REDIS_CREDS_DIR_PATH": str(cache.credentials),
        },
    )


def _component(role: str, component: str) -> str:
    """A component's name in its identity: ``repo-server`` for the cluster's own Argo CD,
    ``<role>-repo-server`` for another."""
    return component if role == "argocd" else f"{role}-{component}"


def _start_repo_server(
    env: Environment,
    cluster: kube.Cluster,
    common: _Common,
    role: str = "argocd",
    tuning: WorkerTuning = UNTUNED,
) -> tuple[str, Path]:
    """The repo-server, serving mTLS on loopback; its address and the CA its clients trust."""
    repo_tls = pki.identity_files(
        env, identity(cluster.name, _component(role, "repo-server")), hosts=REPO_SERVER_HOSTS, server=True
    )
    # The repo-server reads its serving pair from $ARGOCD_APP_CONF_PATH/reposerver/tls/tls.{crt,key}
    # (a Secret mounted there on a real cluster); the identity's folder has that very layout.
    app_config = common.folder / "config"
    _link(app_config / "reposerver" / "tls", repo_tls.ca.parent)
    repo_port, repo_metrics = ports.free_port(), ports.free_port()
    repo = env.add_process(
        process.spawn(
            f"{cluster.name}/{role}-repo-server",
            [
                str(paths.bin_dir() / "argocd"),
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
                "--client-ca-path",
                str(repo_tls.ca),
                *redis_client_flags(common.cache, repo_tls),
                *tuning.argocd_repo_server_args,
            ],
            common.folder / "repo-server.log",
            env={
                **common.env,
                **tuning.argocd_env,
                "ARGOCD_BINARY_NAME": "argocd-repo-server",
                "ARGOCD_APP_CONF_PATH": str(app_config),
            },
        )
    )
    process.wait_until(repo, lambda: ports.is_listening(repo_port), timeout=60, what="listening")
    return f"127.0.0.1:{repo_port}", repo_tls.ca


def _repo_server_client(tls: files.TLSFiles) -> list[str]:
    """A repo-server client's flags: the server verified against the CA, its own certificate."""
    assert tls.cert is not None and tls.key is not None
    return [
        "--repo-server-ca-cert-path",
        str(tls.ca),
        "--repo-server-client-cert-path",
        str(tls.cert),
        "--repo-server-client-cert-key-path",
        str(tls.key),
    ]


def start_processes(
    env: Environment,
    cluster: kube.Cluster,
    *,
    namespace: str = NAMESPACE,
    role: str = "argocd",
    cache: redis.Redis | None = None,
    controller_args: Sequence[str] = (),
    tuning: WorkerTuning = UNTUNED,
) -> ArgoCD:
    """Run Argo CD's components (redis, repo-server, application-controller) against a cluster that
    already holds its CRDs and configuration (applied by ``start`` or by a composition).

    ``role`` names another Argo CD of the same cluster (its folder, processes, identities and
    endpoint), ``cache`` a Redis it shares, ``controller_args`` more application controller flags,
    ``tuning`` a local worker's memory settings (``localinfra.tuning``)."""
    common = _common(env, cluster, namespace, role, cache)
    repo_addr, repo_ca = _start_repo_server(env, cluster, common, role, tuning)
    processors = tuning.argocd_controller_args or ("--status-processors", "4", "--operation-processors", "2")
    controller_tls = pki.identity_files(
        env, identity(cluster.name, _component(role, "application-controller"))
    )
    metrics = ports.free_port()
    controller = env.add_process(
        process.spawn(
            f"{cluster.name}/{role}-application-controller",
            [
                str(paths.bin_dir() / "argocd"),
                "--loglevel",
                "warn",
                "--kubeconfig",
                str(common.kubeconfig),
                "--namespace",
                namespace,
                *redis_client_flags(common.cache, controller_tls),
                "--repo-server",
                repo_addr,
                *_repo_server_client(controller_tls),
                "--metrics-port",
                str(metrics),
                *processors,
                *controller_args,
            ],
            common.folder / "application-controller.log",
            env={**common.env, **tuning.argocd_env, "ARGOCD_BINARY_NAME": "argocd-application-controller"},
        )
    )
    process.wait_until(controller, lambda: ports.is_listening(metrics), timeout=60, what="serving metrics")
    env.set_endpoint(
        f"{role}/{cluster.name}",
        namespace=namespace,
        repo_server=repo_addr,
        repo_server_ca=str(repo_ca),
        controller_metrics=f"127.0.0.1:{metrics}",
    )
    return ArgoCD(cluster.name, namespace, repo_addr, repo_ca, common.cache)


@dataclass(frozen=True)
class AppSetTuning:
    """Argo CD's ApplicationSet controller's throughput settings: its Kubernetes client's
    requests per second and burst (``ARGOCD_K8S_CLIENT_QPS``/``_BURST``, 50 and 100 by default)
    and its concurrent reconciliations (``--concurrent-reconciliations``, 10 by default)."""

    client_qps: float
    client_burst: int
    concurrent_reconciliations: int

    def args(self) -> list[str]:
        return ["--concurrent-reconciliations", str(self.concurrent_reconciliations)]

    def env(self) -> dict[str, str]:
        return {
            "ARGOCD_K8S_CLIENT_QPS": f"{self.client_qps:g}",
            "ARGOCD_K8S_CLIENT_BURST": str(self.client_burst),
        }


def start_applicationset_controller(
    env: Environment,
    cluster: kube.Cluster,
    *,
    namespace: str = NAMESPACE,
    applicationset_namespaces: str = "*",
    requeue_seconds: int = 5,
    progressive_syncs: bool = False,
    tuning: AppSetTuning | None = None,
) -> ArgoCD:
    """Argo CD's own ApplicationSet controller (and the repo-server its git generator asks), with no
    application controller: the Applications it generates stay as written, for comparison.

    ``applicationset_namespaces`` (a glob) are the namespaces besides ``namespace`` whose
    ApplicationSets it serves. ``requeue_seconds`` is how often it regenerates: its git generator
    reads the repository again at each pass. ``progressive_syncs`` turns RollingSync on
    (``--enable-progressive-syncs``). ``tuning`` overrides its Kubernetes client's rate limits and
    its concurrent reconciliations (None: Argo CD's defaults)."""
    common = _common(env, cluster, namespace)
    repo_addr, repo_ca = _start_repo_server(env, cluster, common)
    client_tls = pki.identity_files(env, identity(cluster.name, "applicationset-controller"))
    metrics, probe, webhook = ports.free_port(), ports.free_port(), ports.free_port()
    controller = env.add_process(
        process.spawn(
            f"{cluster.name}/argocd-applicationset-controller",
            [
                str(paths.bin_dir() / "argocd"),
                "--loglevel",
                "warn",
                "--logformat",
                "text",
                "--kubeconfig",
                str(common.kubeconfig),
                "--namespace",
                namespace,
                "--applicationset-namespaces",
                applicationset_namespaces,
                "--argocd-repo-server",
                repo_addr,
                *_repo_server_client(client_tls),
                "--metrics-addr",
                f"127.0.0.1:{metrics}",
                "--probe-addr",
                f"127.0.0.1:{probe}",
                "--webhook-addr",
                f"127.0.0.1:{webhook}",
                "--enable-scm-providers=false",
                *(["--enable-progressive-syncs"] if progressive_syncs else []),
                *(tuning.args() if tuning else []),
            ],
            common.folder / "applicationset-controller.log",
            env={
                **common.env,
                "ARGOCD_BINARY_NAME": "argocd-applicationset-controller",
                "ARGOCD_APPLICATIONSET_CONTROLLER_REQUEUE_AFTER": f"{requeue_seconds}s",
                **(tuning.env() if tuning else {}),
            },
        )
    )
    process.wait_until(controller, lambda: ports.is_listening(metrics), timeout=90, what="serving metrics")
    return ArgoCD(cluster.name, namespace, repo_addr, repo_ca, common.cache)


def kubeconfig_for(env: Environment, cluster: str) -> Path:
    return env.root / "clusters" / cluster / "argocd" / "kubeconfig"
