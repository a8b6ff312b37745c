"""The hub chart's Argo CD (argocd.server.enabled, gitops.enabled), rendered by the real helm and
checked by the hub's real kube-apiserver: the settings the local stack runs with (the RBAC policy
refusing every change to Applications, the resource inclusions and Lua health checks of the
management Argo CD, its project and root Application), TLS on every hop, no secret in a value or a
command line, a NetworkPolicy admitting each part's callers alone, and every pod admitted under the
``restricted`` Pod Security Standard.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from localinfra import hub_argocd, hub_gitops, kube, kubectl
from tests.charts import HUB_CHART, HUB_VALUES, helm_run, make_namespace, prepare_hub, render, values_file

NAMESPACE = "argocd-chart"
REPO = "https://git.example/platform.git"
VALUES: dict[str, Any] = {
    **HUB_VALUES,
    "tls": {"certManager": {"enabled": True}},
    "argocd": {"namespace": NAMESPACE, "server": {"enabled": True, "url": "https://argocd.example:8443"}},
    "gitops": {"enabled": True, "repoURL": REPO, "path": "platform"},
}


@pytest.fixture(scope="module")
def rendered(hub: kube.Cluster, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    prepare_hub(hub)
    make_namespace(hub, "fleetplane")
    make_namespace(hub, NAMESPACE, {"pod-security.kubernetes.io/enforce": "restricted"})
    return render(hub, HUB_CHART, "fleetplane", values_file(tmp_path_factory.mktemp("values"), VALUES))


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def _args(docs: list[dict[str, Any]], deployment: str) -> list[str]:
    args: list[str] = _one(docs, "Deployment", deployment)["spec"]["template"]["spec"]["containers"][0][
        "args"
    ]
    return args


def test_argo_cd_runs_with_the_local_stacks_settings(rendered: list[dict[str, Any]]) -> None:
    rbac = _one(rendered, "ConfigMap", "argocd-rbac-cm")["data"]
    assert rbac == hub_argocd.rbac_policy()
    for action in ("sync", "delete", "update", "create", "action/*", "exec"):
        assert f"p, role:admin, applications, {action}, */*, deny" in rbac["policy.csv"]
    settings = _one(rendered, "ConfigMap", "argocd-cm")["data"]
    assert settings["url"] == "https://argocd.example:8443"
    assert settings["users.anonymous.enabled"] == "false" and settings["exec.enabled"] == "false"
    # the management controller caches the platform's kinds only: never the mirror Applications
    assert yaml.safe_load(settings["resource.inclusions"]) == hub_gitops.INCLUSIONS
    included = [kind for rule in yaml.safe_load(settings["resource.inclusions"]) for kind in rule["kinds"]]
    assert "Application" not in included and "Secret" not in included
    health = {k: v for k, v in settings.items() if k.startswith("resource.customizations.health.")}
    assert "resource.customizations.health.platform.fleetplane.io_ClusterClaim" in health
    assert all('status = "Degraded"' in script for script in health.values())

    project = _one(rendered, "AppProject", "platform")["spec"]
    assert project["sourceRepos"] == [REPO]
    assert project["destinations"] == [{"server": "https://kubernetes.default.svc", "namespace": "*"}]
    source = _one(rendered, "Application", "platform")["spec"]["source"]
    assert (source["repoURL"], source["path"], source["targetRevision"]) == (REPO, "platform", "HEAD")
    for deployment in ("argocd-server", "argocd-application-controller", "argocd-repo-server"):
        image = _one(rendered, "Deployment", deployment)["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image == "quay.io/argoproj/argocd:v3.6.1"


def test_every_hop_is_tls_and_no_secret_is_in_a_value_or_a_command_line(
    rendered: list[dict[str, Any]],
) -> None:
    certs = {d["spec"]["secretName"]: d["spec"] for d in rendered if d["kind"] == "Certificate"}
    assert "argocd.example" in certs["argocd-server-tls"]["dnsNames"]
    assert f"argocd-redis.{NAMESPACE}.svc" in certs["argocd-redis-tls"]["dnsNames"]
    assert certs["argocd-repo-server-tls"]["uris"] == [
        "spiffe://fleetplane.local/service/argocd-hub-gitops-repo-server"
    ]
    for deployment in ("argocd-server", "argocd-application-controller", "argocd-repo-server"):
        args = _args(rendered, deployment)
        assert "--redis-use-tls" in args and "--redis-client-certificate" in args, deployment
    assert "--client-ca-path" in _args(rendered, "argocd-repo-server")
    assert "--repo-server-ca-cert-path" in _args(rendered, "argocd-application-controller")

    redis = _one(rendered, "Secret", "argocd-redis")["stringData"]
    password = redis["auth"]
    assert len(password) >= 32 and f"requirepass {password}" in redis["redis.conf"]
    assert "tls-auth-clients yes" in redis["redis.conf"] and "port 0" in redis["redis.conf"]
    elsewhere = [
        d for d in rendered if not (d["kind"] == "Secret" and d["metadata"]["name"] == "argocd-redis")
    ]
    assert password not in json.dumps(elsewhere)
    # the admin's password is argocd-server's to generate: the chart holds none
    assert not [d for d in rendered if d["metadata"]["name"] == hub_argocd.INITIAL_ADMIN_SECRET]
    assert "data" not in _one(rendered, "Secret", "argocd-secret")
    assert "password" not in json.dumps(VALUES).lower()


def _policy(docs: list[dict[str, Any]], component: str) -> dict[str, Any]:
    spec: dict[str, Any] = _one(docs, "NetworkPolicy", f"t-fleetplane-hub-{component}")["spec"]
    return spec


def _components(peers: list[dict[str, Any]]) -> set[str]:
    return {p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in peers}


def test_each_part_admits_its_callers_alone(rendered: list[dict[str, Any]]) -> None:
    (redis,) = _policy(rendered, "argocd-redis")["ingress"]
    assert _components(redis["from"]) == {"argocd-server", "gitops-controller", "gitops-repo-server"}
    assert _policy(rendered, "argocd-redis")["egress"] == []
    (repo,) = _policy(rendered, "gitops-repo-server")["ingress"]
    assert _components(repo["from"]) == {"gitops-controller"} and repo["ports"] == [
        {"protocol": "TCP", "port": 8081}
    ]
    assert _policy(rendered, "gitops-controller")["ingress"] == []
    (server,) = _policy(rendered, "argocd-server")["ingress"]
    assert server["ports"] == [{"protocol": "TCP", "port": 8080}]


def test_the_api_server_accepts_every_object_and_admits_every_pod(
    hub: kube.Cluster, rendered: list[dict[str, Any]]
) -> None:
    """cert-manager's CRDs are not on the test hub: its Certificates are checked above."""
    docs = [d for d in rendered if d["kind"] != "Certificate"]
    out = kubectl.dry_run(hub.kubeconfig, docs, field_manager="chart-test")
    assert out.count("(server dry run)") == len(docs), out
    for d in rendered:
        if d["kind"] == "Deployment" and d["metadata"].get("namespace") == NAMESPACE:
            pod = {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": d["metadata"],
                "spec": d["spec"]["template"]["spec"],
            }
            out = kubectl.run(
                hub.kubeconfig, "create", "--dry-run=server", "-o", "name", "-f", "-", stdin=json.dumps(pod)
            )
            assert out.strip() == f"pod/{d['metadata']['name']}"


def test_the_redis_password_is_kept_across_upgrades(
    hub: kube.Cluster, rendered: list[dict[str, Any]], tmp_path: Path
) -> None:
    kept = {
        "apiVersion": "v1",
        "kind": "Secret",
        # as a first install of release t left it
        "metadata": {
            "name": "argocd-redis",
            "namespace": NAMESPACE,
            "labels": {"app.kubernetes.io/managed-by": "Helm"},
            "annotations": {"meta.helm.sh/release-name": "t", "meta.helm.sh/release-namespace": "fleetplane"},
        },
        "data": {"auth": base64.b64encode(b"k" * 40).decode()},
    }
    kubectl.apply(hub.kubeconfig, [kept], field_manager="chart-test")
    try:
        # helm template reads no cluster: a server-side dry run of an install does (lookup)
        out = render_installed(hub, tmp_path)
        assert _one(out, "Secret", "argocd-redis")["stringData"]["auth"] == "k" * 40
    finally:
        kubectl.run(hub.kubeconfig, "-n", NAMESPACE, "delete", "secret", "argocd-redis")


def render_installed(hub: kube.Cluster, tmp_path: Path) -> list[dict[str, Any]]:
    text = helm_run(
        hub,
        "install",
        "t",
        str(HUB_CHART),
        "--namespace",
        "fleetplane",
        "--dry-run=server",
        "-f",
        # without cert-manager, whose CRDs an install must find
        values_file(tmp_path, {**VALUES, "tls": {"certManager": {"enabled": False}}}),
    )
    manifest = text.split("MANIFEST:", 1)[1].split("NOTES:", 1)[0]
    return [d for d in yaml.safe_load_all(manifest) if d]
