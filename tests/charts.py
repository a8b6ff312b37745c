"""What the chart tests share: the charts, values that render them, and the real helm run
against a test cluster."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from localinfra import helm, kube, kubectl
from localinfra.errors import InfraError

CHARTS = Path(__file__).resolve().parents[1] / "charts"
#: the Prometheus Operator's ServiceMonitor CRD, for the dry runs of the charts' monitors
SERVICE_MONITOR_CRD = Path(__file__).resolve().parent / "crds" / "servicemonitors.monitoring.coreos.com.yaml"
HUB_CHART = CHARTS / "fleetplane-hub"
AGENT_CHART = CHARTS / "fleetplane-agent"
HUB_VALUES: dict[str, Any] = {
    "kafka": {"bootstrap": "kafka.kafka.svc:9093"},
    "provisioner": {"awsRegion": "eu-west-1"},
}
AGENT_VALUES: dict[str, Any] = {
    "cluster": "worker-1",
    "server": "maestro.fleetplane.example:8090",
    "kafka": {"bootstrap": "kafka.fleetplane.example:9093"},
    "rbac": {
        "extraRules": [
            {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"], "namespace": "default"}
        ]
    },
}
VALUES = {HUB_CHART: HUB_VALUES, AGENT_CHART: AGENT_VALUES}


def helm_run(cluster: kube.Cluster, *args: str) -> str:
    argv = [str(helm.helm_path()), "--kubeconfig", str(cluster.kubeconfig), *args]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False)
    if out.returncode != 0:
        # lint reports its findings on stdout, every command its error on stderr
        raise InfraError(f"helm {' '.join(args)[:200]} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout


def values_file(tmp_path: Path, values: dict[str, Any]) -> str:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return str(path)


def make_namespace(cluster: kube.Cluster, name: str, labels: dict[str, str] | None = None) -> None:
    obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}
    kubectl.apply(cluster.kubeconfig, [obj], field_manager="chart-test")


def render(cluster: kube.Cluster, chart: Path, namespace: str, values: str) -> list[dict[str, Any]]:
    text = helm_run(cluster, "template", "t", str(chart), "--namespace", namespace, "-f", values)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def prepare_hub(hub: kube.Cluster) -> kube.Cluster:
    """The hub with the chart's CRDs and the namespace the charts' Roles go into (Argo CD's)."""
    helm.ensure_helm()
    kubectl.run(
        hub.kubeconfig, "apply", "--server-side", "--field-manager=chart-test", "-f", str(HUB_CHART / "crds")
    )
    kubectl.wait_established(hub.kubeconfig, *crd_names())
    make_namespace(hub, "argocd")
    return hub


def install_service_monitor_crd(hub: kube.Cluster) -> None:
    kubectl.run(
        hub.kubeconfig, "apply", "--server-side", "--field-manager=chart-test", "-f", str(SERVICE_MONITOR_CRD)
    )
    kubectl.wait_established(hub.kubeconfig, "servicemonitors.monitoring.coreos.com")


def crd_names() -> list[str]:
    docs = yaml.safe_load_all((HUB_CHART / "crds" / "platform-crds.yaml").read_text())
    return [doc["metadata"]["name"] for doc in docs if doc]


def release_objects(cluster: kube.Cluster, release: str, namespace: str) -> dict[str, list[dict[str, Any]]]:
    """Every object of a release, namespaced and cluster-scoped, by kind."""
    selector = f"app.kubernetes.io/instance={release}"
    found: dict[str, list[dict[str, Any]]] = {}
    for kinds, scope in (
        ("deployments,services,serviceaccounts,networkpolicies,roles,rolebindings", ["--all-namespaces"]),
        ("clusterroles,clusterrolebindings", []),
    ):
        listed = json.loads(
            kubectl.run(cluster.kubeconfig, "get", kinds, "-l", selector, "-o", "json", *scope)
        )
        for item in listed["items"]:
            found.setdefault(item["kind"], []).append(item)
    return found
