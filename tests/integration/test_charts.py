"""fleetplane's Helm charts (charts/), with the real helm against the hub's real kube-apiserver.

There is no kubelet: pods stay Pending, so the tests assert on the objects the API server accepts
and stores. Server-side dry runs with strict field validation check every rendered object against
the API's schemas; the namespace labelled ``pod-security.kubernetes.io/enforce=restricted`` checks
each Deployment's pod template against the ``restricted`` Pod Security Standard (the API server's
PodSecurity admission, on by default).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from localinfra import kube, kubectl
from localinfra.errors import InfraError
from tests.charts import (
    AGENT_CHART,
    AGENT_VALUES,
    HUB_CHART,
    HUB_VALUES,
    VALUES,
    helm_run,
    install_service_monitor_crd,
    make_namespace,
    prepare_hub,
    release_objects,
    render,
    values_file,
)

RESTRICTED = "pod-security.kubernetes.io/enforce"


@pytest.fixture(scope="module")
def hub_ready(hub: kube.Cluster) -> kube.Cluster:
    return prepare_hub(hub)


@pytest.fixture
def hub_values(tmp_path: Path) -> str:
    return values_file(tmp_path, HUB_VALUES)


@pytest.fixture
def agent_values(tmp_path: Path) -> str:
    return values_file(tmp_path, AGENT_VALUES)


@pytest.mark.parametrize("chart", [HUB_CHART, AGENT_CHART], ids=lambda p: p.name)
def test_the_chart_lints_clean(hub_ready: kube.Cluster, chart: Path, tmp_path: Path) -> None:
    values = values_file(tmp_path, VALUES[chart])
    out = helm_run(hub_ready, "lint", "--strict", str(chart), "-f", values)
    assert "1 chart(s) linted, 0 chart(s) failed" in out


@pytest.mark.parametrize("chart", [HUB_CHART, AGENT_CHART], ids=lambda p: p.name)
def test_the_packaged_chart_carries_the_shared_library(
    hub_ready: kube.Cluster, chart: Path, tmp_path: Path
) -> None:
    """charts/ links to fleetplane-common; ``helm package`` copies it in, so the archive renders alone
    (the hub's with its dashboard file)."""
    values = values_file(tmp_path, VALUES[chart])
    helm_run(hub_ready, "package", str(chart), "--destination", str(tmp_path))
    (archive,) = tmp_path.glob("*.tgz")
    assert "kind: Deployment" in helm_run(hub_ready, "template", "t", str(archive), "-f", values)
    if chart == HUB_CHART:  # and the dashboard, a file of the chart
        dashboard = ("--set", "metrics.dashboard.enabled=true")
        assert '"uid": "fleetplane"' in helm_run(
            hub_ready, "template", "t", str(archive), "-f", values, *dashboard
        )


@pytest.mark.parametrize(
    ("chart", "flag", "setting", "path"),
    [
        (HUB_CHART, "--set-string", "server.port=grpc", "/server/port"),
        (HUB_CHART, "--set", "networkPolicy.kafka.ports[0]=99999", "/networkPolicy/kafka/ports/0"),
        (HUB_CHART, "--set", "provisioner.replicas=0", "/provisioner/replicas"),
        (HUB_CHART, "--set", "kafka.principals=dn", "/kafka/principals"),
        (HUB_CHART, "--set", "leaderElection.leaseDuration=0", "/leaderElection/leaseDuration"),
        (AGENT_CHART, "--set-string", "tls.enabled=maybe", "/tls/enabled"),
        (AGENT_CHART, "--set", "rbac.extraRules[0].verbs=get", "/rbac/extraRules/0/verbs"),
        (AGENT_CHART, "--set", "metrics.port=0", "/metrics/port"),
        (HUB_CHART, "--set-string", "metrics.enabled=yes", "/metrics/enabled"),
        (HUB_CHART, "--set", "metrics.dashboard.label=two words", "/metrics/dashboard/label"),
        (HUB_CHART, "--set", "metrics.serviceMonitor.interval=30", "/metrics/serviceMonitor/interval"),
        (AGENT_CHART, "--set", "metrics.serviceMonitor.labels.a=1", "/metrics/serviceMonitor/labels/a"),
        (HUB_CHART, "--set", "server.service.type=External", "/server/service/type"),
        (HUB_CHART, "--set", "kafka.topics.replicationFactor=0", "/kafka/topics/replicationFactor"),
        # Helm's validator names the key but not its path for a refused property name.
        (
            HUB_CHART,
            "--set-string",
            "kafka.topics.config.max\\.message\\.bytes=9",
            "invalid propertyName 'max.message.bytes'",
        ),
    ],
)
def test_a_bad_value_is_refused_naming_its_path(
    hub_ready: kube.Cluster, chart: Path, flag: str, setting: str, path: str, tmp_path: Path
) -> None:
    values = values_file(tmp_path, VALUES[chart])
    for command in ("lint", "template"):
        with pytest.raises(InfraError) as refused:
            helm_run(hub_ready, command, str(chart), "-f", values, flag, setting)
        assert path in str(refused.value), refused.value


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            ["leaderElection.enabled=false"],
            ".replicas: 2 replicas with leaderElection.enabled false would all act at once",
        ),
        (["leaderElection.renewDeadline=15"], "leaderElection.renewDeadline (15) must be shorter"),
        (["leaderElection.retryPeriod=9"], "must be longer than 1.2 x leaderElection.retryPeriod (9)"),
    ],
)
def test_operator_replicas_that_could_act_at_once_are_refused(
    hub_ready: kube.Cluster, hub_values: str, settings: list[str], message: str
) -> None:
    sets = [arg for setting in settings for arg in ("--set", setting)]
    with pytest.raises(InfraError) as refused:
        helm_run(hub_ready, "template", str(HUB_CHART), "-f", hub_values, *sets)
    assert message in str(refused.value), refused.value


def test_one_replica_of_each_operator_may_run_without_election(
    hub_ready: kube.Cluster, hub_values: str
) -> None:
    sets = ["leaderElection.enabled=false", "controllers.replicas=1", "provisioner.replicas=1"]
    docs = render_with(hub_ready, hub_values, sets)
    operators = [
        d for d in docs if d["kind"] == "Deployment" and not d["metadata"]["name"].endswith("-maestro")
    ]
    assert len(operators) == 2
    for deployment in operators:
        assert (deployment["spec"]["replicas"], deployment["spec"]["strategy"]["type"]) == (1, "Recreate")
        assert "--no-leader-elect" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert not [d for d in docs if d["kind"] == "Role" and d["metadata"]["name"].endswith("-leader-election")]


def test_the_topic_settings_reach_the_server(hub_ready: kube.Cluster, hub_values: str) -> None:
    sets = ["kafka.topics.replicationFactor=3", "kafka.topics.minInsyncReplicas=2"]
    strings = ["--set-string", "kafka.topics.config.retention\\.ms=604800000"]
    (server,) = [
        d
        for d in render_with(hub_ready, hub_values, sets, strings)
        if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-maestro")
    ]
    args = server["spec"]["template"]["spec"]["containers"][0]["args"]
    flags = {args[i]: args[i + 1] for i, arg in enumerate(args) if arg.startswith("--topic-")}
    assert flags["--topic-replication-factor"] == "3"
    assert flags["--topic-min-insync-replicas"] == "2"
    assert flags["--topic-config"] == "retention.ms=604800000"


def render_with(
    hub: kube.Cluster, values: str, sets: list[str], more: Sequence[str] = ()
) -> list[dict[str, Any]]:
    args = [*(arg for setting in sets for arg in ("--set", setting)), *more]
    text = helm_run(hub, "template", "t", str(HUB_CHART), "--namespace", "fleetplane", "-f", values, *args)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def test_a_missing_required_value_is_named(hub_ready: kube.Cluster, tmp_path: Path) -> None:
    with pytest.raises(InfraError, match=r"provisioner\.awsRegion"):
        helm_run(hub_ready, "template", str(HUB_CHART), "--set", "kafka.bootstrap=k:9093")


@pytest.mark.parametrize(
    ("chart", "namespace"), [(HUB_CHART, "fleetplane-dry"), (AGENT_CHART, "agent-dry")], ids=["hub", "agent"]
)
def test_every_rendered_object_passes_a_strict_server_side_dry_run(
    hub_ready: kube.Cluster, chart: Path, namespace: str, tmp_path: Path
) -> None:
    values = values_file(tmp_path, VALUES[chart])
    make_namespace(hub_ready, namespace)
    docs = render(hub_ready, chart, namespace, values)
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "ServiceAccount", "ClusterRole", "NetworkPolicy"} <= kinds
    out = kubectl.dry_run(hub_ready.kubeconfig, docs, field_manager="chart-test")
    assert out.count("serverside-applied (server dry run)") == len(docs), out


def test_the_hub_chart_with_every_option_passes_the_dry_run(hub_ready: kube.Cluster, tmp_path: Path) -> None:
    """A token port (and its auth-delegator binding), the REST port, a PostgreSQL CA, peers in every
    policy, the server's Service a load balancer for agents outside the hub (annotated, its sources
    ranged)."""
    peers = [{"ipBlock": {"cidr": "10.0.0.0/8"}}]
    service = {
        "type": "LoadBalancer",
        "annotations": {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"},
        "loadBalancerSourceRanges": ["10.40.0.0/16"],
    }
    values = {
        **HUB_VALUES,
        "kafka": {**HUB_VALUES["kafka"], "principals": "subject"},
        "server": {
            "tokenPort": 8091,
            "restPort": 8000,
            "tokenAudiences": ["fleetplane"],
            "database": {"secretName": "db", "caConfigMap": "db-ca"},
            "service": service,
        },
        "networkPolicy": {"postgres": {"to": peers, "ports": [5432]}, "serverIngressFrom": peers},
        "workerCluster": {"install": False},
    }
    make_namespace(hub_ready, "fleetplane-options")
    docs = render(hub_ready, HUB_CHART, "fleetplane-options", values_file(tmp_path, values))
    assert any(
        d["kind"] == "ClusterRoleBinding" and d["roleRef"]["name"] == "system:auth-delegator" for d in docs
    )
    (deployment,) = [
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-maestro")
    ]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--rest-port") + 1] == "8000"
    assert args[args.index("--kafka-principals") + 1] == "subject"
    (server,) = [d for d in docs if d["kind"] == "Service" and d["metadata"]["name"].endswith("-maestro")]
    assert {"name": "rest", "port": 8000, "targetPort": "rest"} in server["spec"]["ports"]
    assert (
        server["spec"]["type"] == "LoadBalancer"
        and server["metadata"]["annotations"] == service["annotations"]
    )
    assert server["spec"]["loadBalancerSourceRanges"] == ["10.40.0.0/16"]
    out = kubectl.dry_run(hub_ready.kubeconfig, docs, field_manager="chart-test")
    assert out.count("(server dry run)") == len(docs), out


def test_function_servers_are_named_to_the_provisioner_over_mutual_tls_and_reachable(
    hub_ready: kube.Cluster, tmp_path: Path
) -> None:
    values = {
        **HUB_VALUES,
        "provisioner": {
            **HUB_VALUES["provisioner"],
            "functions": [{"name": "size-policy", "address": "size-policy.functions:9443"}],
            "functionTlsSecret": "provisioner-functions-tls",
        },
    }
    docs = render(hub_ready, HUB_CHART, "fleetplane", values_file(tmp_path, values))
    (deployment,) = [
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-provisioner")
    ]
    pod = deployment["spec"]["template"]["spec"]
    args = pod["containers"][0]["args"]
    assert args[args.index("--function") + 1] == "size-policy=size-policy.functions:9443"
    tls_dir = args[args.index("--function-tls-dir") + 1]
    assert {"name": "functions-tls", "mountPath": tls_dir, "readOnly": True} in pod["containers"][0][
        "volumeMounts"
    ]
    assert any(v.get("secret", {}).get("secretName") == "provisioner-functions-tls" for v in pod["volumes"])
    (policy,) = [
        d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"].endswith("-provisioner")
    ]
    assert {"ports": [{"protocol": "TCP", "port": 9443}]} in policy["spec"]["egress"]
    with pytest.raises(InfraError, match=r"/provisioner/functions/0/address"):
        bad = {
            **values,
            "provisioner": {**values["provisioner"], "functions": [{"name": "x", "address": "x"}]},
        }
        render(hub_ready, HUB_CHART, "fleetplane", values_file(tmp_path, bad))


def test_the_controllers_reach_git_servers_only_as_configured(
    hub_ready: kube.Cluster, tmp_path: Path
) -> None:
    """networkPolicy.git: the controllers' egress to the Git servers of git generators (HTTPS to
    anywhere by default; narrowed to CIDRs and ports; none with no ports); the provisioner gets none."""

    def egress(git: dict[str, Any] | None) -> dict[str, list[dict[str, Any]]]:
        values = {**HUB_VALUES, "networkPolicy": {"git": git}} if git is not None else HUB_VALUES
        docs = render(hub_ready, HUB_CHART, "fleetplane", values_file(tmp_path, values))
        policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
        return {
            name: p["spec"]["egress"]
            for p in policies
            if (name := p["metadata"]["name"].rsplit("-", 1)[-1]) in ("controllers", "provisioner")
        }

    default = egress(None)
    assert {"ports": [{"protocol": "TCP", "port": 443}]} in default["controllers"]
    cidrs = [{"ipBlock": {"cidr": "192.0.2.0/24"}}]
    narrowed = egress({"to": cidrs, "ports": [443, 22]})
    rule = {"ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 22}], "to": cidrs}
    assert rule in narrowed["controllers"]
    assert not any(r.get("to") == cidrs for r in narrowed["provisioner"])
    closed = egress({"to": [], "ports": []})
    assert len(closed["controllers"]) == len(default["controllers"]) - 1
    with pytest.raises(InfraError, match=r"/networkPolicy/git/ports/0"):
        egress({"to": [], "ports": [70000]})


def test_the_server_admits_only_the_components_that_call_it(hub_ready: kube.Cluster, tmp_path: Path) -> None:
    """Its policy names the controllers and the provisioner; with neither (and no extra peers) it
    admits nobody, never everyone, as an ingress rule without peers would."""

    def server_ingress(values: dict[str, Any]) -> list[dict[str, Any]]:
        docs = render(hub_ready, HUB_CHART, "fleetplane", values_file(tmp_path, values))
        (policy,) = [
            d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"].endswith("-maestro")
        ]
        ingress: list[dict[str, Any]] = policy["spec"]["ingress"]
        return ingress

    ((rule,),) = [server_ingress(HUB_VALUES)]
    components = [peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for peer in rule["from"]]
    assert components == ["controllers", "provisioner"]
    alone = {**HUB_VALUES, "controllers": {"enabled": False}, "provisioner": {"enabled": False}}
    assert server_ingress(alone) == []


def test_metrics_on_are_served_annotated_and_admitted_and_off_are_not(
    hub_ready: kube.Cluster, tmp_path: Path
) -> None:
    """With ``metrics.enabled`` every process listens on the pod's metrics port (an argument, a
    container port), its pod carries the prometheus.io annotations and its policy admits
    ``networkPolicy.metricsFrom`` on that port (any peer when empty); the objects pass a strict
    server-side dry run. Off, the default, there is none of it."""
    peers = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    port = [{"protocol": "TCP", "port": 9191}]
    charts = ((HUB_CHART, HUB_VALUES, "metrics-hub"), (AGENT_CHART, AGENT_VALUES, "metrics-agent"))
    for chart, base, namespace in charts:
        make_namespace(hub_ready, namespace)
        on = {**base, "metrics": {"enabled": True, "port": 9191}, "networkPolicy": {"metricsFrom": peers}}
        docs = render(hub_ready, chart, namespace, values_file(tmp_path, on))
        deployments = [d for d in docs if d["kind"] == "Deployment"]
        assert len(deployments) == (3 if chart == HUB_CHART else 1)
        for deployment in deployments:
            template = deployment["spec"]["template"]
            assert template["metadata"]["annotations"] == {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "9191",
                "prometheus.io/path": "/metrics",
            }
            (container,) = template["spec"]["containers"]
            args = container["args"]
            assert args[args.index("--metrics-port") + 1] == "9191"
            assert args[args.index("--metrics-host") + 1] == "0.0.0.0"
            assert {"name": "metrics", "containerPort": 9191} in container["ports"]
        for policy in (d for d in docs if d["kind"] == "NetworkPolicy"):
            admitted = [rule.get("from") for rule in policy["spec"]["ingress"] if rule["ports"] == port]
            assert admitted == [peers], policy["metadata"]["name"]
        out = kubectl.dry_run(hub_ready.kubeconfig, docs, field_manager="chart-test")
        assert out.count("serverside-applied (server dry run)") == len(docs), out

        anyone = {**base, "metrics": {"enabled": True, "port": 9191}}
        docs = render(hub_ready, chart, namespace, values_file(tmp_path, anyone))
        for policy in (d for d in docs if d["kind"] == "NetworkPolicy"):
            assert {"ports": port} in policy["spec"]["ingress"], policy["metadata"]["name"]

        docs = render(hub_ready, chart, namespace, values_file(tmp_path, base))
        for deployment in (d for d in docs if d["kind"] == "Deployment"):
            template = deployment["spec"]["template"]
            assert "annotations" not in template["metadata"]
            assert "--metrics-port" not in template["spec"]["containers"][0]["args"]


def test_a_service_monitor_scrapes_every_process_when_asked(hub_ready: kube.Cluster, tmp_path: Path) -> None:
    """With ``metrics.serviceMonitor.enabled`` each chart renders a headless Service whose selector
    takes in every one of its Deployments' pods on their ``metrics`` port, and a Prometheus Operator
    ServiceMonitor that selects that Service alone, in the release's namespace or the one asked
    for, with the labels asked for; both pass a strict server-side dry run against the operator's
    CRD. Off, the default, there is neither; on without ``metrics.enabled``, the chart says so."""
    install_service_monitor_crd(hub_ready)
    make_namespace(hub_ready, "monitoring")
    charts = ((HUB_CHART, HUB_VALUES, "monitor-hub"), (AGENT_CHART, AGENT_VALUES, "monitor-agent"))
    for chart, base, namespace in charts:
        make_namespace(hub_ready, namespace)
        monitor = {"enabled": True, "namespace": "monitoring", "labels": {"release": "prometheus"}}
        on = {**base, "metrics": {"enabled": True, "port": 9191, "serviceMonitor": monitor}}
        docs = render(hub_ready, chart, namespace, values_file(tmp_path, on))
        (service,) = [
            d for d in docs if d["kind"] == "Service" and d["metadata"]["name"].endswith("-metrics")
        ]
        (smon,) = [d for d in docs if d["kind"] == "ServiceMonitor"]
        assert service["spec"]["clusterIP"] == "None"
        assert service["spec"]["ports"] == [{"name": "metrics", "port": 9191, "targetPort": "metrics"}]
        deployments = [d for d in docs if d["kind"] == "Deployment"]
        assert len(deployments) == (3 if chart == HUB_CHART else 1)
        for deployment in deployments:
            template = deployment["spec"]["template"]
            assert service["spec"]["selector"].items() <= template["metadata"]["labels"].items()
            (container,) = template["spec"]["containers"]
            assert {"name": "metrics", "containerPort": 9191} in container["ports"]
        services = [d for d in docs if d["kind"] == "Service"]
        selected = [
            d
            for d in services
            if smon["spec"]["selector"]["matchLabels"].items() <= d["metadata"]["labels"].items()
        ]
        assert selected == [service]
        assert smon["metadata"]["namespace"] == "monitoring"
        assert smon["metadata"]["labels"]["release"] == "prometheus"
        assert smon["spec"]["namespaceSelector"] == {"matchNames": [namespace]}
        assert smon["spec"]["endpoints"] == [
            {
                "port": "metrics",
                "path": "/metrics",
                "scheme": "http",
                "interval": "30s",
                "scrapeTimeout": "10s",
            }
        ]
        assert smon["spec"]["podTargetLabels"] == ["app.kubernetes.io/component"]
        out = kubectl.dry_run(hub_ready.kubeconfig, docs, field_manager="chart-test")
        assert out.count("serverside-applied (server dry run)") == len(docs), out

        here = {**base, "metrics": {"enabled": True, "serviceMonitor": {"enabled": True}}}
        docs = render(hub_ready, chart, namespace, values_file(tmp_path, here))
        (smon,) = [d for d in docs if d["kind"] == "ServiceMonitor"]
        assert smon["metadata"]["namespace"] == namespace

        docs = render(
            hub_ready, chart, namespace, values_file(tmp_path, {**base, "metrics": {"enabled": True}})
        )
        assert not [
            d for d in docs if d["kind"] == "ServiceMonitor" or d["metadata"]["name"].endswith("-metrics")
        ]
        alone = {**base, "metrics": {"serviceMonitor": {"enabled": True}}}
        with pytest.raises(InfraError, match=r"metrics.serviceMonitor.enabled needs metrics.enabled: true"):
            render(hub_ready, chart, namespace, values_file(tmp_path, alone))


def test_the_dashboard_ships_labelled_for_grafanas_sidecar_when_asked(
    hub_ready: kube.Cluster, tmp_path: Path
) -> None:
    """With ``metrics.dashboard.enabled`` the hub chart renders one ConfigMap holding the dashboard
    file as it is, labelled ``grafana_dashboard: "1"`` in the release's namespace, or with the
    label, namespace and annotations asked for; it passes a strict server-side dry run. Off, the
    default, there is none."""
    dashboard = json.loads((HUB_CHART / "dashboards" / "fleetplane.json").read_text())
    make_namespace(hub_ready, "dashboard-hub")
    make_namespace(hub_ready, "monitoring")

    def config_maps(dashboard_values: dict[str, Any]) -> list[dict[str, Any]]:
        values = {**HUB_VALUES, "metrics": {"dashboard": dashboard_values}}
        docs = render(hub_ready, HUB_CHART, "dashboard-hub", values_file(tmp_path, values))
        found = [d for d in docs if d["kind"] == "ConfigMap"]
        if found:
            out = kubectl.dry_run(hub_ready.kubeconfig, found, field_manager="chart-test")
            assert out.count("serverside-applied (server dry run)") == len(found), out
        return found

    (default,) = config_maps({"enabled": True})
    assert default["metadata"]["namespace"] == "dashboard-hub"
    assert default["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(default["data"]["fleetplane.json"]) == dashboard

    asked = {
        "enabled": True,
        "namespace": "monitoring",
        "label": "grafana",
        "labelValue": "fleet",
        "annotations": {"grafana_folder": "fleetplane"},
    }
    (elsewhere,) = config_maps(asked)
    assert elsewhere["metadata"]["namespace"] == "monitoring"
    assert elsewhere["metadata"]["labels"]["grafana"] == "fleet"
    assert "grafana_dashboard" not in elsewhere["metadata"]["labels"]
    assert elsewhere["metadata"]["annotations"] == {"grafana_folder": "fleetplane"}

    assert config_maps({"enabled": False}) == []


def test_cert_manager_certificates_name_each_identity(hub_ready: kube.Cluster, tmp_path: Path) -> None:
    values = {**HUB_VALUES, "tls": {"certManager": {"enabled": True}}}
    docs = render(hub_ready, HUB_CHART, "fleetplane", values_file(tmp_path, values))
    certs = {d["spec"]["secretName"]: d["spec"] for d in docs if d["kind"] == "Certificate"}
    assert certs["maestro-server-tls"]["uris"] == ["spiffe://fleetplane.local/service/maestro-server"]
    assert "t-fleetplane-hub-maestro.fleetplane.svc" in certs["maestro-server-tls"]["dnsNames"]
    assert certs["fleetplane-controllers-tls"]["subject"]["organizationalUnits"] == ["source"]
    assert certs["fleetplane-provisioner-tls"]["commonName"] == "provisioner"


def _pods_of(docs: list[dict[str, Any]], namespace: str) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": d["metadata"]["name"], "namespace": namespace},
            "spec": d["spec"]["template"]["spec"],
        }
        for d in docs
        if d["kind"] == "Deployment"
    ]


def test_every_pod_is_admitted_under_the_restricted_pod_security_standard(
    hub_ready: kube.Cluster, tmp_path: Path
) -> None:
    namespace = "fleetplane-restricted"
    make_namespace(hub_ready, namespace, {RESTRICTED: "restricted"})
    pods = _pods_of(render(hub_ready, HUB_CHART, namespace, values_file(tmp_path, HUB_VALUES)), namespace)
    pods += _pods_of(
        render(hub_ready, AGENT_CHART, namespace, values_file(tmp_path, AGENT_VALUES)), namespace
    )
    assert len(pods) == 4
    for pod in pods:
        out = kubectl.run(
            hub_ready.kubeconfig, "create", "--dry-run=server", "-o", "name", "-f", "-", stdin=json.dumps(pod)
        )
        assert out.strip() == f"pod/{pod['metadata']['name']}"
    # What makes the above worth its name: the same pod without its security context is refused.
    bare = pods[0]
    bare["spec"] = {**bare["spec"], "securityContext": {}}
    bare["spec"]["containers"] = [
        {k: v for k, v in c.items() if k != "securityContext"} for c in bare["spec"]["containers"]
    ]
    with pytest.raises(InfraError, match="violates PodSecurity"):
        kubectl.run(hub_ready.kubeconfig, "create", "--dry-run=server", "-f", "-", stdin=json.dumps(bare))


# (component, what its account may do, what it may not): (verb, group, resource, namespace[, name])
# with "resource/subresource"; namespace "" is every namespace; RELEASE stands for the release's
# namespace, and LEASE / OTHER_LEASE for the component's own Lease and the other operator's
Access = tuple[str, ...]
RELEASE, LEASE, OTHER_LEASE = "<release>", "<lease>", "<other lease>"
LEASES = "coordination.k8s.io"
ELECTS: list[Access] = [
    ("create", LEASES, "leases", RELEASE),
    *[(verb, LEASES, "leases", RELEASE, LEASE) for verb in ("get", "update", "list", "watch")],
]
ELECTS_NOTHING_ELSE: list[Access] = [
    ("update", LEASES, "leases", RELEASE, OTHER_LEASE),
    ("delete", LEASES, "leases", RELEASE, LEASE),
    ("update", LEASES, "leases", "kube-system", LEASE),
    ("list", LEASES, "leases", RELEASE),
]
PERMISSIONS: list[tuple[str, list[Access], list[Access]]] = [
    (
        "controllers",
        [
            ("patch", "argoproj.io", "applicationsets", "team-a"),
            ("patch", "argoproj.io", "applicationsets/status", "team-a"),
            ("create", "argoproj.io", "applications", "team-a"),
            ("watch", "", "secrets", ""),
            ("create", "", "events", "team-a"),
            *ELECTS,
        ],
        [
            ("create", "", "secrets", "argocd"),
            ("create", "apiextensions.k8s.io", "customresourcedefinitions", ""),
            *ELECTS_NOTHING_ELSE,
        ],
    ),
    (
        "provisioner",
        [
            ("create", "apiextensions.k8s.io", "customresourcedefinitions", ""),
            ("patch", "fleetplane.io", "compositeresourcedefinitions/status", ""),
            ("create", "platform.fleetplane.io", "workerclusters", ""),
            ("create", "", "secrets", "argocd"),
            ("patch", "", "secrets", "team-a"),  # a claim's connection Secret
            ("list", "", "secrets", ""),
            *ELECTS,
        ],
        [("create", "", "secrets", "default"), ("get", "", "secrets", "default"), *ELECTS_NOTHING_ELSE],
    ),
    (
        "maestro",
        [],
        [
            ("list", "", "secrets", ""),
            ("create", "authentication.k8s.io", "tokenreviews", ""),
            ("create", LEASES, "leases", RELEASE),
        ],
    ),
]


def _can(cluster: kube.Cluster, account: str, checks: list[Access]) -> list[bool]:
    """What the API server's authorizer answers for ``account`` (SubjectAccessReviews)."""
    answers = []
    for verb, group, resource, namespace, *named in checks:
        plural, _, subresource = resource.partition("/")
        attributes = {"verb": verb, "group": group, "resource": plural, "subresource": subresource}
        if named:
            attributes["name"] = named[0]
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {"user": account, "resourceAttributes": {**attributes, "namespace": namespace}},
        }
        out = kubectl.run(cluster.kubeconfig, "create", "-o", "json", "-f", "-", stdin=json.dumps(review))
        answers.append(bool(json.loads(out)["status"].get("allowed")))
    return answers


@pytest.fixture
def release(hub_ready: kube.Cluster) -> Iterator[str]:
    yield "fp"
    helm_run(hub_ready, "uninstall", "fp", "--namespace", "fleetplane-release", "--ignore-not-found")


def test_install_upgrade_and_uninstall_with_helm(
    hub_ready: kube.Cluster, release: str, tmp_path: Path
) -> None:
    namespace = "fleetplane-release"
    make_namespace(hub_ready, namespace, {RESTRICTED: "restricted"})
    make_namespace(hub_ready, "team-a")
    claims = values_file(
        tmp_path,
        {
            **HUB_VALUES,
            "provisioner": {**HUB_VALUES["provisioner"], "connectionSecretNamespaces": ["team-a"]},
        },
    )
    helm_run(hub_ready, "install", release, str(HUB_CHART), "--namespace", namespace, "-f", claims)
    installed = release_objects(hub_ready, release, namespace)
    deployments = {d["metadata"]["name"]: d for d in installed["Deployment"]}
    assert set(deployments) == {
        f"{release}-fleetplane-hub-{c}" for c in ("maestro", "controllers", "provisioner")
    }
    server = deployments[f"{release}-fleetplane-hub-maestro"]
    assert server["spec"]["replicas"] == 2
    for component in ("maestro", "controllers", "provisioner"):
        (container,) = deployments[f"{release}-fleetplane-hub-{component}"]["spec"]["template"]["spec"][
            "containers"
        ]
        assert {name: container[name]["httpGet"] for name in ("readinessProbe", "livenessProbe")} == {
            "readinessProbe": {"path": "/readyz", "port": "health", "scheme": "HTTP"},
            "livenessProbe": {"path": "/healthz", "port": "health", "scheme": "HTTP"},
        }, component
        args = container["args"]
        assert args[args.index("--health-port") + 1] == "8080" and "--liveness" not in args, component
        assert {"name": "health", "containerPort": 8080, "protocol": "TCP"} in container["ports"]
    assert server["spec"]["template"]["spec"]["containers"][0]["image"] == "fleetplane-server:0.1.0"
    assert {r["metadata"]["name"] for r in installed["ClusterRole"]} == {
        f"{release}-fleetplane-hub-controllers",
        f"{release}-fleetplane-hub-provisioner",
    }
    assert sorted((r["metadata"]["namespace"], r["metadata"]["name"]) for r in installed["Role"]) == [
        ("argocd", f"{release}-fleetplane-hub-provisioner"),
        (namespace, f"{release}-fleetplane-hub-controllers-leader-election"),
        (namespace, f"{release}-fleetplane-hub-provisioner-leader-election"),
        ("team-a", f"{release}-fleetplane-hub-provisioner"),
    ]
    for name in ("controllers", "provisioner"):
        operator = deployments[f"{release}-fleetplane-hub-{name}"]["spec"]
        assert (operator["replicas"], operator["strategy"]["type"]) == (2, "RollingUpdate")
    for component, allowed, refused in PERMISSIONS:
        account = f"system:serviceaccount:{namespace}:{release}-fleetplane-hub-{component}"
        other = "provisioner" if component == "controllers" else "controllers"
        names = {
            RELEASE: namespace,
            LEASE: f"{release}-fleetplane-hub-{component}",
            OTHER_LEASE: f"{release}-fleetplane-hub-{other}",
        }
        allowed = [tuple(names.get(part, part) for part in check) for check in allowed]
        refused = [tuple(names.get(part, part) for part in check) for check in refused]
        assert _can(hub_ready, account, allowed) == [True] * len(allowed), (component, allowed)
        assert _can(hub_ready, account, refused) == [False] * len(refused), (component, refused)
    # the platform CRDs came with the chart, and the default definition with them
    definition = "compositeresourcedefinitions.fleetplane.io/workerclusters.platform.fleetplane.io"
    kubectl.run(hub_ready.kubeconfig, "get", definition)

    upgraded = values_file(tmp_path, {**HUB_VALUES, "imageTag": "0.2.0", "server": {"replicas": 3}})
    helm_run(hub_ready, "upgrade", release, str(HUB_CHART), "--namespace", namespace, "-f", upgraded)
    deployments = {
        d["metadata"]["name"]: d for d in release_objects(hub_ready, release, namespace)["Deployment"]
    }
    server = deployments[f"{release}-fleetplane-hub-maestro"]
    assert server["spec"]["replicas"] == 3
    images = {c["image"] for d in deployments.values() for c in d["spec"]["template"]["spec"]["containers"]}
    assert images == {"fleetplane-server:0.2.0", "fleetplane-hub:0.2.0"}
    history = json.loads(helm_run(hub_ready, "history", release, "--namespace", namespace, "-o", "json"))
    assert [h["revision"] for h in history] == [1, 2]

    helm_run(hub_ready, "uninstall", release, "--namespace", namespace, "--wait")
    assert release_objects(hub_ready, release, namespace) == {}
    for obj in (definition, "compositions.fleetplane.io/worker-cluster"):
        assert kubectl.run(hub_ready.kubeconfig, "get", obj, "--ignore-not-found", "-o", "name").strip() == ""
    assert helm_run(hub_ready, "list", "--namespace", namespace, "-q").strip() == ""


def test_install_and_uninstall_the_agent_chart(hub_ready: kube.Cluster, agent_values: str) -> None:
    namespace = "agent-release"
    make_namespace(hub_ready, namespace, {RESTRICTED: "restricted"})
    helm_run(hub_ready, "install", "agent", str(AGENT_CHART), "--namespace", namespace, "-f", agent_values)
    try:
        installed = release_objects(hub_ready, "agent", namespace)
        (deployment,) = installed["Deployment"]
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == "fleetplane-agent:0.1.0"
        assert container["args"][:4] == ["maestro", "agent", "--cluster", "worker-1"]
        probes = {name: container[name]["httpGet"] for name in ("readinessProbe", "livenessProbe")}
        assert probes == {
            "readinessProbe": {"path": "/readyz", "port": "health", "scheme": "HTTP"},
            "livenessProbe": {"path": "/healthz", "port": "health", "scheme": "HTTP"},
        }
        assert {"name": "health", "containerPort": 8080, "protocol": "TCP"} in container["ports"]
        assert sorted(r["metadata"]["namespace"] for r in installed["Role"]) == ["argocd", "default"]
    finally:
        helm_run(hub_ready, "uninstall", "agent", "--namespace", namespace, "--wait")
    assert release_objects(hub_ready, "agent", namespace) == {}
