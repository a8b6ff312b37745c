"""Rendering compositions: the shipped worker-cluster template, and what users see when one is wrong.

Cases: the worker-cluster template on a small Argo CD install list renders, in order, the provider
ClusterConfig, the argocd namespace, the CRDs, the Argo CD objects we run (application-controller
StatefulSet and repo-server waited for, argocd-server skipped, namespaced objects in argocd), the
default AppProject, worker-apps, the Maestro consumer, the agent (its command names the cluster; its
health and metrics ports probed and annotated) and the hub inventory Secret (the claim's labels,
what the hub controllers read); an aws claim without a region fails naming spec.parameters.region;
template errors name the template line and the variable
(undefined, syntax, runtime); rendered output errors name the document and resource (YAML, unknown
key, bad name, duplicate, bad target, waitReady, provider first and only once); the filters; the
values; the ClusterSpec.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
import yaml

from controllers.propagation import inventory
from provisioner import catalog, identity, render, template_env, xrd
from provisioner.providers import local_workloads as lw

from . import builders

PROVIDER = """---
name: cluster
target: provider
object:
  apiVersion: fleetplane.io/v1alpha1
  kind: ClusterConfig
  spec: {provider: local, nodeCount: 1}
"""


def render_claim(claim: dict[str, Any]) -> list[render.ComposedResource]:
    claim = builders.defaulted(claim)
    composite = xrd.composite_from_claim(claim, builders.definition())
    values = render.composite_values(
        composite, claim, builders.composition()["spec"]["defaults"], builders.platform()
    )
    return render.render(builders.template(), source=builders.TEMPLATE_SOURCE, values=values)


@pytest.fixture(scope="module")
def rendered() -> list[render.ComposedResource]:
    claim = builders.claim(labels={"env": "dev", "region": "eu"})
    claim["spec"]["parameters"]["apps"] = {
        "repoURL": "file:///srv/apps",
        "path": "apps",
        "targetRevision": "HEAD",
    }
    return render_claim(claim)


def by_name(resources: list[render.ComposedResource]) -> dict[str, render.ComposedResource]:
    return {r.name: r for r in resources}


def test_worker_cluster_order_and_targets(rendered: list[render.ComposedResource]) -> None:
    assert [(r.index, r.target, r.name, r.wait_ready) for r in rendered] == [
        (0, "provider", "cluster", False),
        (1, "workload", "argocd-namespace", False),
        (2, "identity", "argocd-redis-certificate", False),
        (3, "identity", "argocd-application-controller-redis-client-certificate", False),
        (4, "identity", "argocd-repo-server-redis-client-certificate", False),
        (5, "workload", "crd-applications-argoproj-io", False),
        (6, "workload", "serviceaccount-argocd-application-controller", False),
        (7, "workload", "clusterrole-argocd-application-controller", False),
        (8, "workload", "clusterrolebinding-argocd-application-controller", False),
        (9, "workload", "configmap-argocd-cm", False),
        (10, "workload", "service-argocd-repo-server", False),
        (11, "workload", "service-argocd-redis", False),
        (12, "workload", "deployment-argocd-redis", False),
        (13, "workload", "deployment-argocd-repo-server", True),
        (14, "workload", "statefulset-argocd-application-controller", True),
        (15, "workload", "argocd-default-project", False),
        (16, "workload", "worker-apps", False),
        (17, "maestro", "maestro-consumer", False),
        (18, "workload", "agent-namespace", False),
        (19, "workload", "agent-settings", False),
        (20, "workload", "agent-serviceaccount", False),
        (21, "workload", "agent-clusterrole", False),
        (22, "workload", "agent-clusterrolebinding", False),
        (23, "workload", "agent-role-argocd", False),
        (24, "workload", "agent-rolebinding-argocd", False),
        (25, "identity", "agent-identity", False),
        (26, "identity", "argocd-repo-server-certificate", False),
        (27, "identity", "argocd-repo-server-client-certificate", False),
        (28, "workload", "agent", True),
        (29, "hub", "inventory", False),
    ]


def test_the_repo_server_and_its_client_authenticate_each_other(
    rendered: list[render.ComposedResource],
) -> None:
    resource = by_name(rendered)["argocd-repo-server-certificate"]
    wanted = identity.request(resource.object)
    assert (wanted.service, wanted.secret_name, wanted.secret_namespace) == (
        "argocd-repo-server", "argocd-repo-server-tls", "argocd",
    )  # fmt: skip
    assert "argocd-repo-server.argocd.svc" in wanted.dns_names
    assert wanted.restart == (
        ("Deployment", "argocd-repo-server"),
        ("StatefulSet", "argocd-application-controller"),
    )
    assert wanted.lifetime.total_seconds() == 30 * 24 * 3600
    client = identity.request(by_name(rendered)["argocd-repo-server-client-certificate"].object)
    assert (client.service, client.usage, client.secret_name) == (
        "argocd-application-controller", "client", "argocd-repo-server-mtls",
    )  # fmt: skip
    assert client.keys == identity.SecretKeys("client.crt", "client.key", ("client-ca.crt", "server-ca.crt"))
    # Argo CD's own parameters: the controller verifies the repo-server (a ConfigMap install.yaml ships)
    params = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "argocd-cmd-params-cm"}}
    claim = builders.defaulted(builders.claim())
    composite = xrd.composite_from_claim(claim, builders.definition())
    values = render.composite_values(
        composite, claim, builders.composition()["spec"]["defaults"], builders.platform(install=[params])
    )
    composed = by_name(render.render(builders.template(), source=builders.TEMPLATE_SOURCE, values=values))
    assert composed["configmap-argocd-cmd-params-cm"].object["data"] == {
        "controller.repo.server.strict.tls": "true"
    }


def test_the_agent_identity_is_its_consumers_in_the_secret_it_mounts(
    rendered: list[render.ComposedResource],
) -> None:
    wanted = identity.request(by_name(rendered)["agent-identity"].object)
    agent = by_name(rendered)["agent"].object
    assert wanted.consumer == by_name(rendered)["maestro-consumer"].object["name"]
    assert lw.tls_secret_name(agent) == wanted.secret_name
    assert wanted.secret_namespace == agent["metadata"]["namespace"]
    assert wanted.lifetime.total_seconds() == 86400


def test_argocd_server_is_skipped(rendered: list[render.ComposedResource]) -> None:
    assert not [r.name for r in rendered if "argocd-server" in r.name]


def test_argocd_objects_are_namespaced_in_argocd(rendered: list[render.ComposedResource]) -> None:
    argocd = [r for r in rendered if r.target == "workload"][1:11]  # after the namespace
    namespaces = {r.object["kind"]: r.object["metadata"].get("namespace") for r in argocd}
    assert namespaces == {
        "CustomResourceDefinition": None,
        "ServiceAccount": "argocd",
        "ClusterRole": None,
        "ClusterRoleBinding": None,
        "ConfigMap": "argocd",
        "Service": "argocd",
        "Deployment": "argocd",
        "StatefulSet": "argocd",
    }
    argocd_cm = by_name(rendered)["configmap-argocd-cm"].object
    assert argocd_cm["data"] == {
        "resource.exclusions": "- apiGroups: [cilium.io]\n",
        "timeout.reconciliation": "30s",
    }


def test_the_platform_values_are_not_modified(rendered: list[render.ComposedResource]) -> None:
    install = builders.platform()["argocd"]["install"]
    assert all("namespace" not in obj["metadata"] for obj in install)


def test_provider_cluster_config(rendered: list[render.ComposedResource]) -> None:
    name = rendered[0].object["metadata"]["name"]
    spec = render.cluster_spec(rendered[0], name)
    assert render.provider_name(rendered[0]) == "local"
    assert (spec.name, spec.version, spec.node_count, spec.region) == (name, "1.37", 1, "")
    assert spec.labels == {"env": "dev", "region": "eu", "fleetplane.io/team": "apps"}
    assert spec.tags["fleetplane.io/claim-name"] == "team-a"


def test_worker_apps_application(rendered: list[render.ComposedResource]) -> None:
    app = by_name(rendered)["worker-apps"].object
    assert app["metadata"]["namespace"] == "argocd"
    assert app["spec"]["source"] == {"repoURL": "file:///srv/apps", "path": "apps", "targetRevision": "HEAD"}
    assert app["spec"]["destination"]["server"] == "https://kubernetes.default.svc"
    assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True}


def test_maestro_consumer_and_agent(rendered: list[render.ComposedResource]) -> None:
    name = rendered[0].object["metadata"]["name"]
    resources = by_name(rendered)
    assert resources["maestro-consumer"].object == {
        "kind": "MaestroConsumer",
        "name": name,
        "labels": {"env": "dev", "region": "eu", "fleetplane.io/team": "apps"},
    }
    agent = resources["agent"].object
    assert agent["metadata"]["labels"]["app.kubernetes.io/name"] == "maestro-agent"
    command = agent["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command == [
        "fleetplane", "maestro", "agent",
        "--cluster", name,
        "--kubeconfig", "/var/run/fleetplane/kubeconfig",
        "--kafka", "127.0.0.1:9092",
        "--server", "127.0.0.1:8090",
        "--topic-prefix", "fleetplane.maestro",
        "--tls-dir", "/var/run/fleetplane/tls",
        "--health-host", "0.0.0.0", "--health-port", "8080",
        "--metrics-host", "0.0.0.0", "--metrics-port", "9090",
    ]  # fmt: skip
    (container,) = agent["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["ports"] == [
        {"name": "health", "containerPort": 8080},
        {"name": "metrics", "containerPort": 9090},
    ]
    assert agent["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == "9090"
    mounts = agent["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert {"name": "tls", "mountPath": "/var/run/fleetplane/tls", "readOnly": True} in mounts
    volumes = {v["name"]: v for v in agent["spec"]["template"]["spec"]["volumes"]}
    assert volumes["tls"]["secret"]["secretName"] == "maestro-agent-tls"
    settings = {
        k: base64.b64decode(v).decode() for k, v in resources["agent-settings"].object["data"].items()
    }
    assert settings["cluster"] == name and settings["server"] == "127.0.0.1:8090"
    assert (
        yaml.safe_load(settings["kubeconfig"])["clusters"][0]["cluster"]["server"]
        == "https://kubernetes.default.svc"
    )


WRITE_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]
AGENT_SUBJECTS = [
    {"kind": "ServiceAccount", "name": "maestro-agent", "namespace": "open-cluster-management-agent"}
]
AGENT_CLUSTER_RULES = [
    {"apiGroups": ["agent.maestro.fleetplane.io"], "resources": ["appliedbundles"], "verbs": WRITE_VERBS},
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "resourceNames": ["appliedbundles.agent.maestro.fleetplane.io"],
        "verbs": ["get", "create", "update", "patch"],
    },
    {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
    {"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*"], "verbs": ["get"]},
]
APPLICATIONS = {"apiGroups": ["argoproj.io"], "resources": ["applications"], "verbs": WRITE_VERBS}


def agent_rbac(resources: list[render.ComposedResource]) -> dict[str, dict[str, Any]]:
    return {r.name: r.object for r in resources if r.name.startswith(("agent-role", "agent-cluster"))}


def test_the_agent_may_write_only_applications_in_argocd_and_its_own_records(
    rendered: list[render.ComposedResource],
) -> None:
    rbac = agent_rbac(rendered)
    assert sorted(rbac) == [
        "agent-clusterrole",
        "agent-clusterrolebinding",
        "agent-role-argocd",
        "agent-rolebinding-argocd",
    ]
    assert rbac["agent-clusterrole"]["rules"] == AGENT_CLUSTER_RULES
    role = rbac["agent-role-argocd"]
    assert (role["kind"], role["metadata"]["namespace"], role["rules"]) == ("Role", "argocd", [APPLICATIONS])
    for binding, kind in (("agent-clusterrolebinding", "ClusterRole"), ("agent-rolebinding-argocd", "Role")):
        assert rbac[binding]["subjects"] == AGENT_SUBJECTS
        assert rbac[binding]["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": kind,
            "name": "fleetplane:maestro-agent",
        }
    # nothing grants a wildcard
    rules = [rule for obj in rbac.values() for rule in obj.get("rules") or ()]
    assert not any("*" in rule.get(key, ()) for rule in rules for key in ("apiGroups", "resources", "verbs"))


def test_a_claims_agent_permissions_become_roles_and_cluster_rules() -> None:
    configmaps = {"apiGroups": [""], "resources": ["configmaps"], "verbs": WRITE_VERBS}
    read_deployments = {
        "apiGroups": ["apps"],
        "resources": ["deployments"],
        "verbs": ["get", "list", "watch"],
    }
    claim = builders.claim(
        agentPermissions=[
            {**configmaps, "namespace": "default"},
            {**read_deployments, "namespace": "argocd"},
            read_deployments,
            {**configmaps, "resourceNames": ["settings"], "namespace": "shop"},
        ]
    )
    rbac = agent_rbac(render_claim(claim))
    assert rbac["agent-clusterrole"]["rules"] == [*AGENT_CLUSTER_RULES, read_deployments]
    assert rbac["agent-role-argocd"]["rules"] == [APPLICATIONS, read_deployments]
    assert rbac["agent-role-default"]["rules"] == [configmaps]
    assert rbac["agent-role-shop"]["rules"] == [{**configmaps, "resourceNames": ["settings"]}]
    for ns in ("default", "shop"):
        assert rbac[f"agent-rolebinding-{ns}"]["metadata"]["namespace"] == ns
        assert rbac[f"agent-rolebinding-{ns}"]["subjects"] == AGENT_SUBJECTS


def test_malformed_agent_permissions_are_refused_naming_the_field() -> None:
    claim = builders.claim(agentPermissions=[{"apiGroups": [""], "resources": ["pods"], "verbs": []}])
    with pytest.raises(render.ParameterError) as refused:
        render_claim(claim)
    assert str(refused.value).startswith("spec.parameters.agentPermissions[0].verbs: is empty")
    assert refused.value.reason == "InvalidParameter"


def test_inventory_secret_is_what_the_hub_controllers_read(rendered: list[render.ComposedResource]) -> None:
    name = rendered[0].object["metadata"]["name"]
    secret = by_name(rendered)["inventory"].object
    assert secret["metadata"]["namespace"] == "argocd"
    labels = secret["metadata"]["labels"]
    assert labels["argocd.argoproj.io/secret-type"] == "cluster"
    assert {"env": "dev", "region": "eu", "fleetplane.io/team": "apps"}.items() <= labels.items()
    read = inventory.Inventory.from_secrets([secret])
    assert read.problems == ()
    (cluster,) = read.clusters
    assert (cluster.name, cluster.server) == (name, f"https://{name}.clusters.fleetplane.local")
    assert "data" in secret and "config" not in secret["data"]  # pull model: no credentials


def test_names_are_unique_dns_names(rendered: list[render.ComposedResource]) -> None:
    names = [r.name for r in rendered]
    assert len(set(names)) == len(names)


def test_aws_without_region_names_the_parameter() -> None:
    with pytest.raises(render.RenderError) as caught:
        render_claim(builders.claim(provider="aws"))
    text = builders.template().split("\n")
    assert caught.value.source == builders.TEMPLATE_SOURCE
    assert caught.value.line is not None and "parameters.region" in text[caught.value.line - 1]
    assert str(caught.value) == (
        f"{builders.TEMPLATE_SOURCE}:{caught.value.line}: 'parameters' has no attribute 'region' — "
        "set spec.parameters.region on the claim or a default in the Composition"
    )


def test_aws_with_region() -> None:
    resources = render_claim(builders.claim(provider="aws", region="eu-west-1"))
    assert render.cluster_spec(resources[0], "c").region == "eu-west-1"


TEMPLATE_ERRORS = [
    (
        "undefined top-level",
        "a: 1\n{{ nope }}\n",
        {},
        2,
        "'nope' is undefined — the template's variables are",
    ),
    (
        "undefined nested parameter",
        "\n\nx: {{ parameters.apps.repoURL }}\n",
        {"parameters": {"apps": {}}},
        3,
        "'parameters.apps' has no attribute 'repoURL' — set spec.parameters.apps.repoURL on the claim",
    ),
    (
        "undefined inside a loop over platform objects",
        "{% for o in platform.objs %}\n{{ o.metadata.labels }}\n{% endfor %}\n",
        {"platform": {"objs": [{"metadata": {}}]}},
        2,
        "'platform.objs[0].metadata' has no attribute 'labels' — the object has no such field",
    ),
    (
        "undefined platform setting",
        "{{ platform.maestro.grpc }}",
        {"platform": {"maestro": {}}},
        1,
        "the provisioner was given no platform.maestro.grpc",
    ),
    ("claim is None", "\n{{ claim.name }}", {"claim": None}, 2, "guard the expression with {% if ... %}"),
    ("syntax error", "a\nb\n{% if %}\n", {}, 3, "template syntax error: Expected an expression"),
    (
        "unclosed block",
        "{% for x in y %}\n",
        {"y": []},
        1,
        "template syntax error: Unexpected end of template",
    ),
    ("runtime error", "\n{{ 1 // 0 }}", {}, 2, "ZeroDivisionError: integer division or modulo by zero"),
    (
        "sandbox: values cannot be changed",
        "{{ parameters.update({'a': 1}) }}",
        {"parameters": {}},
        1,
        "SecurityError",
    ),
]


@pytest.mark.parametrize(
    ("text", "values", "line", "message"),
    [c[1:] for c in TEMPLATE_ERRORS],
    ids=[c[0] for c in TEMPLATE_ERRORS],
)
def test_template_errors_name_the_line(text: str, values: dict[str, Any], line: int, message: str) -> None:
    with pytest.raises(render.RenderError) as caught:
        render.render(text, source="compositions/t.yaml.j2", values=values)
    assert caught.value.line == line
    assert message in caught.value.message
    assert str(caught.value).startswith(f"compositions/t.yaml.j2:{line}: ")


def doc(name: str, target: str = "workload", extra: str = "") -> str:
    return (
        f"---\nname: {name}\ntarget: {target}\n{extra}"
        f"object: {{apiVersion: v1, kind: ConfigMap, metadata: {{name: {name}}}}}\n"
    )


OUTPUT_ERRORS = [
    (
        "YAML error in a document",
        PROVIDER + "---\nname: broken\ntarget: workload\nobject:\n  a: b\n c: d\n",
        "rendered document 1 ('broken') is not valid YAML at its line 5",
    ),
    ("not a mapping", PROVIDER + "---\n- a\n", "rendered document 1: is list, not a mapping"),
    (
        "unknown key",
        PROVIDER + doc("x", extra="wait: true\n"),
        "rendered document 1 ('x'): has unknown key 'wait'",
    ),
    ("bad name", PROVIDER + doc("Bad_Name"), "name 'Bad_Name' is not a DNS-1123 name"),
    (
        "duplicate name",
        PROVIDER + doc("x") + doc("x"),
        "rendered document 2 ('x'): name 'x' is already used by rendered document 1",
    ),
    (
        "bad target",
        PROVIDER + doc("x", target="cluster"),
        "target 'cluster' is not one of provider, workload, hub, maestro",
    ),
    (
        "waitReady not a boolean",
        PROVIDER + doc("x", extra="waitReady: yes please\n"),
        "waitReady is 'yes please'",
    ),
    ("no object", PROVIDER + "---\nname: x\ntarget: hub\n", "object is NoneType, not a mapping"),
    (
        "workload without kind",
        PROVIDER + "---\nname: x\ntarget: hub\nobject: {apiVersion: v1, metadata: {name: a}}\n",
        "object.kind is missing",
    ),
    (
        "provider not first",
        doc("x") + PROVIDER,
        "rendered document 0 ('x') has target workload — the provider's ClusterConfig must come first",
    ),
    (
        "two providers",
        PROVIDER + PROVIDER.replace("cluster", "second", 1),
        "rendered document 1 ('second') is a second provider resource",
    ),
    ("no provider", doc("x"), "renders no provider resource"),
    ("empty", "{# nothing #}\n", "renders no provider resource"),
    (
        "bad provider",
        PROVIDER.replace("local", "gcp"),
        "object.spec.provider is 'gcp' — use one of local, aws, simulated",
    ),
    ("bad node count", PROVIDER.replace("nodeCount: 1", "nodeCount: 0"), "object.spec.nodeCount is 0"),
    (
        "maestro kind",
        PROVIDER + "---\nname: m\ntarget: maestro\nobject: {kind: Consumer, name: c}\n",
        "a maestro object is kind: MaestroConsumer",
    ),
    (
        "label not a string",
        PROVIDER
        + "---\nname: m\ntarget: maestro\nobject: {kind: MaestroConsumer, name: c, labels: {n: 1}}\n",
        "object.labels.n is 1, not a string",
    ),
]


@pytest.mark.parametrize(
    ("text", "message"), [c[1:] for c in OUTPUT_ERRORS], ids=[c[0] for c in OUTPUT_ERRORS]
)
def test_output_errors_name_the_document(text: str, message: str) -> None:
    with pytest.raises(render.RenderError) as caught:
        render.render(text, source="t.j2", values={})
    assert message in caught.value.message
    assert caught.value.line is None
    assert str(caught.value).startswith("t.j2: ")


def test_json_objects_and_yaml_objects_render_alike() -> None:
    as_yaml = render.render(PROVIDER + doc("x"), source="t", values={})
    as_json = render.render(
        PROVIDER + "---\nname: x\ntarget: workload\nobject: {{ o | tojson }}\n",
        source="t",
        values={"o": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}},
    )
    assert as_yaml == as_json


@pytest.mark.parametrize(
    ("template", "values", "want"),
    [
        ("a:{{ v | toyaml(2) }}", {"v": {"b": [1, 2], "c": "x: y"}}, {"a": {"b": [1, 2], "c": "x: y"}}),
        ("a: {{ v | toyaml }}", {"v": "on"}, {"a": "on"}),
        ("a: {{ v | tojson }}", {"v": "1.30"}, {"a": "1.30"}),
        ("a: {{ v | b64enc }}", {"v": "héllo"}, {"a": base64.b64encode("héllo".encode()).decode()}),
        (
            "a: {{ v | merge({'m': {'y': 2}}) | tojson }}",
            {"v": {"m": {"x": 1}}},
            {"a": {"m": {"x": 1, "y": 2}}},
        ),
    ],
    ids=[
        "toyaml nested",
        "toyaml scalar stays a string",
        "tojson keeps strings",
        "b64enc utf-8",
        "merge deep",
    ],
)
def test_filters(template: str, values: dict[str, Any], want: dict[str, Any]) -> None:
    env = template_env.environment("t", template)
    assert yaml.safe_load(env.get_template("t").render(values)) == want


def test_composite_values() -> None:
    claim = builders.claim(nodeCount=3)
    composite = xrd.composite_from_claim(claim, builders.definition())
    defaults = {"nodeCount": 1, "version": "1.37", "apps": {"path": "apps", "targetRevision": "HEAD"}}
    platform = builders.platform(install=[])
    values = render.composite_values(composite, None, defaults, platform)
    assert values["name"] == composite["metadata"]["name"]
    assert values["claim"] == {"name": "team-a", "namespace": "apps"}  # from claimRef
    assert values["parameters"] == {
        "nodeCount": 3,
        "version": "1.37",
        "apps": {"path": "apps", "targetRevision": "HEAD", "repoURL": "file:///srv/apps"},
        "labels": {"env": "dev"},
    }
    assert values["labels"] == {"env": "dev", "fleetplane.io/team": "apps"}
    assert values["platform"] is platform
    direct = {"apiVersion": "x/v1", "kind": "WorkerCluster", "metadata": {"name": "c"}, "spec": {}}
    assert render.composite_values(direct, None, {}, platform)["claim"] is None
    assert render.composite_values(direct, None, {}, platform)["labels"] == {}


def test_the_team_label_is_the_claims_namespace_whatever_the_defaults_say() -> None:
    composite = xrd.composite_from_claim(builders.claim(namespace="team-b"), builders.definition())
    defaults = {"labels": {"fleetplane.io/team": "platform", "fleetplane.io/tier": "gold"}}
    values = render.composite_values(composite, None, defaults, builders.platform(install=[]))
    assert values["labels"] == {"env": "dev", "fleetplane.io/team": "team-b", "fleetplane.io/tier": "gold"}


@pytest.mark.parametrize("key", ["fleetplane.io/team", "fleetplane.io/demo", "tier.fleetplane.io/gold"])
def test_a_claims_composite_with_a_reserved_label_is_refused_naming_it(key: str) -> None:
    claim = builders.claim(labels={"env": "dev", key: "x"})
    composite = xrd.composite_from_claim(claim, builders.definition())
    with pytest.raises(render.ReservedLabelError) as refused:
        render.composite_values(composite, None, {}, builders.platform(install=[]))
    assert str(refused.value).startswith(f"spec.parameters.labels: {key} is reserved")
    assert refused.value.reason == "ReservedLabel"
    # a composite the platform made itself (no claim) may carry them
    direct = {**composite, "spec": {**composite["spec"], "claimRef": {}}}
    assert key in render.composite_values(direct, None, {}, builders.platform(install=[]))["labels"]


def test_cluster_spec_refuses_an_unchecked_provider_object() -> None:
    bad = render.ComposedResource(name="cluster", target="provider", object={"kind": "Other"})
    with pytest.raises(
        render.RenderError, match=r"it must be apiVersion: fleetplane\.io/v1alpha1, kind: ClusterConfig"
    ):
        render.cluster_spec(bad, "c")


def test_the_real_argocd_install_has_the_shape_the_template_reads() -> None:
    """Only when `fleetplane local build` has cached Argo CD's manifests: the components the template
    keeps or skips exist, with the kinds it expects."""
    from localinfra import build

    path = build.argocd_manifests_dir() / "install.yaml"
    if not path.is_file():
        pytest.skip(f"{path} is not built yet")
    install = catalog.load_documents(path)
    workloads = {
        (d["kind"], d["metadata"]["labels"]["app.kubernetes.io/component"])
        for d in install
        if d["kind"] in ("Deployment", "StatefulSet")
    }
    assert {
        ("StatefulSet", "application-controller"),
        ("Deployment", "repo-server"),
        ("Deployment", "redis"),
        ("Deployment", "server"),
    } <= workloads
    resources = render.render(
        builders.template(),
        source=builders.TEMPLATE_SOURCE,
        values=render.composite_values(
            xrd.composite_from_claim(builders.defaulted(builders.claim()), builders.definition()),
            None,
            builders.composition()["spec"]["defaults"],
            builders.platform(install),
        ),
    )
    kept = {
        (r.object["metadata"].get("labels") or {}).get("app.kubernetes.io/component")
        for r in resources
        if r.target == "workload"
    }
    assert not kept & {"server", "dex-server", "notifications-controller", "applicationset-controller"}
