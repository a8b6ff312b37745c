"""The fleet benchmark's hub: etcd and a kube-apiserver sized for the load, with Argo CD's CRDs, and
the benchmark's own client of it (inventory Secrets, ApplicationSets, the write counters)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import ssl
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client as kube_client
from kubernetes import config as kube_config

from benchmarks.fleet.workload import ARGOCD, NAMESPACE, cluster_secret
from localinfra import argocd, etcd, kube, kubectl, pki
from localinfra.environment import Environment

#: the API server's request verbs that write (as its metrics name them: a create is a POST, an
#: update a PUT, a server-side apply an APPLY), and the operation each is reported as
WRITE_VERBS = {
    "POST": "create",
    "PUT": "update",
    "PATCH": "patch",
    "APPLY": "apply",
    "DELETE": "delete",
    "DELETECOLLECTION": "deletecollection",
}

_SAMPLE = re.compile(r"^apiserver_request_total\{([^}]*)\}\s+([0-9.eE+-]+)")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def write_counts(metrics_text: str, resource: str | None = None) -> dict[str, int]:
    """Hub API writes by operation (create, update, patch, apply, delete...), summed over codes and
    resources (``resource`` alone when given), from a /metrics page."""
    out: dict[str, int] = {}
    for line in metrics_text.splitlines():
        match = _SAMPLE.match(line)
        if not match:
            continue
        labels = dict(_LABEL.findall(match.group(1)))
        operation = WRITE_VERBS.get(labels.get("verb", ""))
        if operation and resource in (None, labels.get("resource")):
            out[operation] = out.get(operation, 0) + int(float(match.group(2)))
    return out


class Hub:
    """The benchmark's own client of the hub, called from threads: inventory Secrets,
    ApplicationSets, and the API server's write counters."""

    def __init__(self, cluster: kube.Cluster, env: Environment) -> None:
        configuration = kube_client.Configuration()
        kube_config.load_kube_config(config_file=str(cluster.kubeconfig), client_configuration=configuration)
        configuration.connection_pool_maxsize = 32
        self.api = kube_client.ApiClient(configuration)
        self.core = kube_client.CoreV1Api(self.api)
        self.custom = kube_client.CustomObjectsApi(self.api)
        self.server = cluster.server
        folder = env.root / "clusters" / cluster.name
        self._ca = env.root / "pki" / "ca.crt"
        self._admin = pki.KeyPair(folder / "admin.crt", folder / "admin.key")

    def create_secrets(self, names: list[str], workers: int = 16) -> None:
        def create(name: str) -> None:
            self.core.create_namespaced_secret(NAMESPACE, cluster_secret(name))  # type: ignore[arg-type]

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(create, names))

    def apply_application_set(self, body: dict[str, Any], attempts: int = 10) -> None:
        """Create or replace; a replace that lost a race with the controllers (their finalizer or
        status write) is read and tried again."""
        group, version = ARGOCD
        name = body["metadata"]["name"]
        for attempt in range(attempts):
            try:
                current: dict[str, Any] = self.custom.get_namespaced_custom_object(  # type: ignore[assignment]
                    group, version, NAMESPACE, "applicationsets", name
                )
            except kube_client.ApiException as exc:
                if exc.status != 404:
                    raise
                self.custom.create_namespaced_custom_object(
                    group, version, NAMESPACE, "applicationsets", body
                )
                return
            meta = {**body["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]}
            try:
                self.custom.replace_namespaced_custom_object(
                    group, version, NAMESPACE, "applicationsets", name, {**body, "metadata": meta}
                )
                return
            except kube_client.ApiException as exc:
                if exc.status != 409 or attempt == attempts - 1:
                    raise

    def delete_application_set(self, name: str) -> None:
        group, version = ARGOCD
        with contextlib.suppress(kube_client.ApiException):
            self.custom.delete_namespaced_custom_object(group, version, NAMESPACE, "applicationsets", name)

    def writes(self) -> dict[str, int]:
        ctx = ssl.create_default_context(cafile=str(self._ca))
        ctx.load_cert_chain(str(self._admin.cert), str(self._admin.key))
        with urllib.request.urlopen(f"{self.server}/metrics", context=ctx, timeout=30) as resp:
            return write_counts(resp.read().decode())

    def close(self) -> None:
        self.api.close()


def hub_go_runtime(memory_share: float = 0.4) -> dict[str, str]:
    """The hub API server's Go runtime for this load: a CPU profile of it at 15,000 Applications
    had a quarter of its time in the garbage collector, which at Go's default (collect each time
    the heap doubles) runs often on a heap that only grows. Collect at 5x instead, with a memory
    limit at ``memory_share`` of the machine's memory that brings collections back as it nears."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {"GOGC": "400", "GOMEMLIMIT": f"{int(total * memory_share) // 2**20}MiB"}


# The watch cache's consistency checker (beta, on by default since Kubernetes 1.34) lists every
# object of each resource from etcd every 5-7.5 minutes and decodes it to compare digests with the
# cache: a CPU profile of the hub at 45,000 Applications found it at 31% of the API server's time.
# A hub of 150,000 Applications turns it off and gives up that check of the watch cache.
HUB_FEATURE_GATES = {"DetectCacheInconsistency": False}


async def start_hub(env: Environment) -> kube.Cluster:
    """etcd and the hub kube-apiserver sized for this load, with Argo CD's CRDs and namespace."""
    etcd_url = await asyncio.to_thread(etcd.start, env, quota_gib=8)
    cluster = await asyncio.to_thread(
        kube.start, env, "hub", etcd_url, go_runtime=hub_go_runtime(), feature_gates=HUB_FEATURE_GATES
    )
    await asyncio.to_thread(argocd.install_crds, cluster)
    await asyncio.to_thread(
        kubectl.apply,
        cluster.kubeconfig,
        [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}],
    )
    return cluster


async def controllers_identity(cluster: kube.Cluster, folder: Path) -> Path:
    """A kubeconfig for the controllers' ServiceAccount, as they run in a hub: RBAC-checked on every
    request, its token's authentication cached by the API server, where the admin's certificate
    skips authorization but has its chain verified on every request (7% of the API server's CPU
    in a profile of mirror writes)."""
    return await asyncio.to_thread(
        kube.service_account_kubeconfig,
        cluster,
        NAMESPACE,
        "fleetplane-controllers",
        folder / "controllers.kubeconfig",
    )
