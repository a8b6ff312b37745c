"""Differential conformance: every ApplicationSet of the corpus, rendered by fleetplane's plan and
by Argo CD's own ApplicationSet controller, gives the same Applications.

Cases (one per corpus file entry, ``corpus/*.yaml``): ``expect: equal`` - the same Applications,
compared after ``harness.normalise``, and either both or neither report an error;
``expect: reported`` - the same Applications, and fleetplane reports what Argo CD skips without a
word (a decision naming an unregistered cluster, as ``TEMPLATING.md`` says);
``expect: refuse`` - both refuse (the API server or Argo CD's controller on one side, fleetplane's
generation or plan on the other), with any Applications still made equal.

Argo CD's controller runs once for the whole corpus, against a hub of its own (a second
kube-apiserver with Argo CD's CRDs, OCM's PlacementDecision CRD and the same cluster Secrets),
each case in its own namespace; its git generator reads the same local repositories through its
repo-server that fleetplane's reader fetches from. Argo CD reads clusterDecisionResource's
ConfigMap and decision resources in its own namespace, fleetplane in the ApplicationSet's: each
side is given them where it reads them (decision names are unique over the corpus).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from controllers.propagation import generators, git_reader
from localinfra import argocd, kube, kubectl
from localinfra.environment import Environment
from tests.integration.conformance import harness, hub

pytestmark = pytest.mark.integration

CASE_NAMES = [
    doc["name"]
    for path in sorted(harness.CORPUS.glob("*.yaml"))
    for doc in yaml.safe_load_all(path.read_text())
    if doc
]
#: how long Argo CD's controller gets to settle every ApplicationSet of the corpus
SETTLE_SECONDS = 240


class Corpus:
    def __init__(
        self, cases: list[harness.Case], argo: dict[str, harness.Result], git: dict[Any, Any]
    ) -> None:
        self.cases = {c.name: c for c in cases}
        self.argo = argo
        self.git = git


@pytest.fixture(scope="module")
def corpus(infra_env: Environment, etcd_url: str, tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    started = time.monotonic()
    cluster = kube.start(infra_env, "conformance", etcd_url, controller_manager=False)
    argocd.install_crds(cluster)
    kubectl.apply(cluster.kubeconfig, [hub.PLACEMENT_DECISION_CRD])
    kubectl.wait_established(cluster.kubeconfig, "placementdecisions.cluster.open-cluster-management.io")
    objects = argocd.config_objects()
    for obj in objects:
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == "argocd-cm":
            # a pull hub never deploys to itself; Argo CD's own switch for that
            obj["data"] = {**(obj.get("data") or {}), "cluster.inClusterEnabled": "false"}
    ocm_config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": hub.OCM_CONFIG_MAP_NAME, "namespace": hub.INVENTORY_NAMESPACE},
        "data": hub.OCM_CONFIG_MAP,
    }
    kubectl.apply(cluster.kubeconfig, [*objects, *hub.cluster_secrets(), ocm_config])
    urls = hub.make_repos(tmp_path_factory.mktemp("conformance-repos"))
    cases = harness.load_corpus(urls)
    # progressive syncs on, as fleetplane serves RollingSync (Argo CD's other ApplicationSets do not change)
    argocd.start_applicationset_controller(
        infra_env, cluster, applicationset_namespaces="cf-*", progressive_syncs=True
    )
    api = config.new_client_from_config(str(cluster.kubeconfig))
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    refused_by_api: dict[str, str] = {}
    for case in cases:
        refusal = _create(core, custom, case)
        if refusal:
            refused_by_api[case.name] = refusal
    argo = _settle(custom, [c for c in cases if c.name not in refused_by_api])
    for name, refusal in refused_by_api.items():
        argo[name] = harness.Result({}, [f"API server: {refusal}"])
    reader = git_reader.GitReader(tmp_path_factory.mktemp("fleetplane-git"))
    patterns: dict[tuple[str, str], set[str]] = {}
    for case in cases:  # one read per repository revision, with every case's file patterns
        for r in generators.referenced_git(case.spec):
            patterns.setdefault((r.repo_url, r.revision), set()).update(r.patterns)
    requests = [generators.GitRequest(u, r, tuple(sorted(p))) for (u, r), p in patterns.items()]
    git = asyncio.run(reader.read(requests))
    print(f"\nconformance: {len(cases)} cases settled by Argo CD in {time.monotonic() - started:.1f}s")
    return Corpus(cases, argo, git)


def _create(core: client.CoreV1Api, custom: client.CustomObjectsApi, case: harness.Case) -> str | None:
    """Writes a case to Argo CD's hub; the API server's refusal of its ApplicationSet, if any."""
    ns = case.namespace
    core.create_namespace({"metadata": {"name": ns}})
    # Argo CD reads clusterDecisionResource's ConfigMap and resources in its own namespace
    for decision in case.decision_objects(hub.INVENTORY_NAMESPACE):
        status = decision.pop("status")
        group, version = decision["apiVersion"].split("/")
        custom.create_namespaced_custom_object(
            group, version, hub.INVENTORY_NAMESPACE, "placementdecisions", decision
        )
        custom.patch_namespaced_custom_object_status(
            group,
            version,
            hub.INVENTORY_NAMESPACE,
            "placementdecisions",
            decision["metadata"]["name"],
            {"status": status},
        )
    try:
        custom.create_namespaced_custom_object(
            "argoproj.io", "v1alpha1", ns, "applicationsets", case.appset(), field_validation="Strict"
        )
    except ApiException as exc:
        if exc.status in (400, 422):
            return str(exc.body)
        raise
    return None


def _settle(custom: client.CustomObjectsApi, cases: list[harness.Case]) -> dict[str, harness.Result]:
    """Argo CD's result for each case once every ApplicationSet has a verdict and the Applications
    stopped changing (two lists a few seconds apart, each of every ApplicationSet and Application)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    previous: dict[str, harness.Result] | None = None
    wanted = {c.namespace: c.name for c in cases}
    while True:
        appsets = custom.list_cluster_custom_object("argoproj.io", "v1alpha1", "applicationsets")["items"]
        apps = custom.list_cluster_custom_object("argoproj.io", "v1alpha1", "applications")["items"]
        by_namespace: dict[str, dict[str, Any]] = {}
        for app in apps:
            by_namespace.setdefault(app["metadata"]["namespace"], {})[app["metadata"]["name"]] = (
                harness.normalise(app)
            )
        results, pending = {}, set(wanted.values())
        for appset in appsets:
            name = wanted.get(appset["metadata"]["namespace"])
            if name is None:
                continue
            conditions = (appset.get("status") or {}).get("conditions") or []
            if any(
                c.get("status") == "True" and c.get("type") in ("ErrorOccurred", "ResourcesUpToDate")
                for c in conditions
            ):
                pending.discard(name)
            results[name] = harness.Result(
                by_namespace.get(appset["metadata"]["namespace"], {}), harness.argo_refused(appset)
            )
        if not pending and results == previous:
            return results
        if time.monotonic() > deadline:
            changed = sorted(n for n in results if previous is None or results[n] != previous.get(n))
            print(f"Argo CD has not settled: no verdict for {sorted(pending)}, still changing: {changed}")
            for name in pending:  # each such case fails alone, saying so
                results[name] = harness.Result({}, [f"no verdict from Argo CD within {SETTLE_SECONDS}s"])
            return results
        previous = results
        time.sleep(3)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_same_applications_as_argocd(corpus: Corpus, name: str) -> None:
    case = corpus.cases[name]
    argo = corpus.argo[name]
    assert not any("no verdict from Argo CD" in r for r in argo.refused), f"{name}: {argo.refused}"
    ours = harness.fleetplane(case, corpus.git)
    diff = "\n".join(harness.differences(ours.applications, argo.applications))
    assert ours.applications == argo.applications, (
        f"{name}: {case.about}\n{diff}\nArgo CD refused: {argo.refused}\nfleetplane refused: {ours.refused}"
    )
    if case.expect != "refuse":
        assert bool(argo.applications) != case.empty, f"{name}: Argo CD made {sorted(argo.applications)}"
    if case.expect == "reported":
        assert not argo.refused, f"{name}: Argo CD was expected to skip it silently: {argo.refused}"
        assert ours.refused, f"{name}: fleetplane was expected to report what Argo CD skips silently"
    elif case.expect == "refuse":
        assert argo.refused, f"{name}: Argo CD was expected to refuse it"
        assert ours.refused, f"{name}: fleetplane was expected to refuse it, as Argo CD did: {argo.refused}"
    else:
        assert bool(ours.refused) == bool(argo.refused), (
            f"{name}: Argo CD refused {argo.refused}; fleetplane refused {ours.refused}"
        )
