"""The Maestro agent with the credentials the local provider gives it, on a real kube-apiserver.

The worker-cluster composition's agent objects (namespace, ServiceAccount, ClusterRole, Roles and
bindings; the claim adds ConfigMaps in ``default``) are rendered and applied as the provisioner
applies them, and the agent gets a kubeconfig with its ServiceAccount's token, as the local
provider makes it. Cases: the API server sees the ServiceAccount, not an admin; the agent
installs its records' CRD, applies an Argo CD Application in ``argocd`` and a ConfigMap where
the claim allowed it, while a ConfigMap in ``kube-system`` fails alone with the API server's
refusal; the same credentials are refused directly for ``kube-system``; a work naming an executor
is checked with real SubjectAccessReviews (the agent may create them): what the executor may
write is applied, the rest refused naming it; deleting the works removes what they applied.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kubeio.errors import ClusterError
from kubeio.rest import KubeRest, RetrySettings
from localinfra import argocd, kube, kubectl
from maestro.agent import records
from maestro.agent.bundle_applier import ApplierSettings
from maestro.agent.kube import KubeApplier
from provisioner import render, xrd
from tests.unit.provisioner import builders

pytestmark = pytest.mark.integration

AGENT_NS = "open-cluster-management-agent"
AGENT_SA = "maestro-agent"
WANTED = ("agent-namespace", "agent-serviceaccount", "agent-clusterrole", "agent-clusterrolebinding")
CONFIGMAPS = ["get", "list", "watch", "create", "update", "patch", "delete"]


@pytest.fixture(scope="module")
def cluster(worker_clusters: list[kube.Cluster]) -> kube.Cluster:
    # The second worker: no other integration test writes to it, so the agent creates its CRD here.
    return worker_clusters[1]


def agent_objects() -> list[dict[str, Any]]:
    """The agent's RBAC as the composition renders it for a claim allowing ConfigMaps in default."""
    claim = builders.defaulted(
        builders.claim(
            agentPermissions=[
                {"apiGroups": [""], "resources": ["configmaps"], "verbs": CONFIGMAPS, "namespace": "default"}
            ]
        )
    )
    composite = xrd.composite_from_claim(claim, builders.definition())
    values = render.composite_values(
        composite, claim, builders.composition()["spec"]["defaults"], builders.platform()
    )
    resources = render.render(builders.template(), source=builders.TEMPLATE_SOURCE, values=values)
    return [
        r.object
        for r in resources
        if r.name in WANTED or r.name.startswith(("agent-role-", "agent-rolebinding-"))
    ]


@pytest.fixture(scope="module")
def agent_kubeconfig(cluster: kube.Cluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    argocd.install_crds(cluster)
    kubectl.apply(
        cluster.kubeconfig, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "argocd"}}]
    )
    kubectl.apply(cluster.kubeconfig, agent_objects(), field_manager="fleetplane-provisioner")
    dest = tmp_path_factory.mktemp("agent") / "maestro-agent.kubeconfig"
    return kube.token_kubeconfig(cluster, AGENT_NS, AGENT_SA, dest, hours=1)


@pytest.fixture
async def agent_rest(agent_kubeconfig: Path) -> AsyncIterator[KubeRest]:
    rest = KubeRest.from_kubeconfig(agent_kubeconfig, retry=RetrySettings(budget=20.0))
    yield rest
    await rest.close()


@pytest.fixture
async def applier(agent_kubeconfig: Path) -> AsyncIterator[KubeApplier]:
    agent = KubeApplier(
        f"rbac-{uuid.uuid4().hex[:8]}",
        agent_kubeconfig,
        settings=ApplierSettings(delete_wait=20.0),
        retry=RetrySettings(budget=20.0),
    )
    await agent.start()  # installs (or updates) the AppliedBundle CRD with its own credentials
    yield agent
    await agent.close()


def application(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd"},
        "spec": {
            "project": "default",
            "source": {"repoURL": "file:///nonexistent", "path": "apps", "targetRevision": "HEAD"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "default"},
        },
    }


def configmap(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"from": "maestro"},
    }


async def test_the_api_server_sees_the_agents_service_account(agent_rest: KubeRest) -> None:
    review = await agent_rest.request(
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    )
    user = review["status"]["userInfo"]
    assert user["username"] == f"system:serviceaccount:{AGENT_NS}:{AGENT_SA}"
    assert "system:masters" not in user.get("groups", [])


async def test_the_agent_writes_what_its_role_allows_and_nothing_else(
    applier: KubeApplier, agent_rest: KubeRest
) -> None:
    rid, suffix = str(uuid.uuid4()), uuid.uuid4().hex[:6]
    bundle = {
        "manifests": [
            application(f"app-{suffix}"),
            configmap(f"cm-{suffix}", "default"),
            configmap(f"cm-{suffix}", "kube-system"),
        ]
    }
    result = await applier.apply(rid, 1, bundle)
    app, allowed, refused = result.outcomes
    assert app.applied and app.live is not None, app.error
    assert allowed.applied, allowed.error
    assert not refused.applied
    assert refused.error is not None and refused.error.startswith(f"ConfigMap kube-system/cm-{suffix}: ")
    assert "forbidden" in refused.error and f"system:serviceaccount:{AGENT_NS}:{AGENT_SA}" in refused.error
    live = await applier.observe(rid)
    assert [obj is not None for obj in live] == [True, True, False]

    # The same credentials, straight to the API server: kube-system is out of reach.
    with pytest.raises(ClusterError) as forbidden:
        await agent_rest.request(
            "POST",
            "/api/v1/namespaces/kube-system/configmaps",
            body=configmap(f"direct-{suffix}", "kube-system"),
        )
    assert forbidden.value.status == 403
    with pytest.raises(ClusterError) as secrets:
        await agent_rest.request("GET", "/api/v1/namespaces/default/secrets")
    assert secrets.value.status == 403

    # The agent deletes again until done (objects may be terminating a moment), as its loop does.
    async with asyncio.timeout(60):
        while not (deleted := await applier.delete(rid)).done:
            assert not deleted.errors, deleted.errors
            await asyncio.sleep(0.5)
    assert await applier.backend.get(app.meta.ref) is None
    assert await applier.backend.get(allowed.meta.ref) is None


async def test_an_executor_is_checked_with_real_subject_access_reviews(
    applier: KubeApplier, cluster: kube.Cluster
) -> None:
    suffix = uuid.uuid4().hex[:6]
    deployer = f"deployer-{suffix}"
    # The executor may write ConfigMaps in default; it has no ServiceAccount object (none is needed).
    kubectl.apply(
        cluster.kubeconfig,
        [
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": deployer, "namespace": "default"},
                "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": CONFIGMAPS}],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": deployer, "namespace": "default"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": deployer},
                "subjects": [{"kind": "ServiceAccount", "name": deployer, "namespace": "team-a"}],
            },
        ],
    )
    rid = str(uuid.uuid4())
    bundle = {
        "manifests": [configmap(f"cm-{suffix}", "default"), application(f"app-{suffix}")],
        "executor": {
            "subject": {"type": "ServiceAccount", "serviceAccount": {"namespace": "team-a", "name": deployer}}
        },
    }
    try:
        result = await applier.apply(rid, 1, bundle)
        allowed, refused = result.outcomes
        assert allowed.applied, allowed.error
        assert not refused.applied
        assert refused.error == (
            f"Application argocd/app-{suffix}: not allowed: the executor ServiceAccount team-a/{deployer} "
            f"may not create, update, patch, get, delete applications.argoproj.io argocd/app-{suffix} "
            "(SubjectAccessReview); bind it to a Role or ClusterRole that grants it"
        )
        assert await applier.backend.get(refused.meta.ref) is None
    finally:
        deleted = await applier.delete(rid)
        kubectl.run(cluster.kubeconfig, "delete", "role,rolebinding", deployer, "-n", "default")
    assert deleted.done, deleted.errors


async def test_the_agent_may_touch_its_own_crd_and_no_other(agent_rest: KubeRest) -> None:
    async def can(verb: str, name: str) -> bool:
        review = await agent_rest.request(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            body={
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {
                    "resourceAttributes": {
                        "verb": verb,
                        "group": "apiextensions.k8s.io",
                        "resource": "customresourcedefinitions",
                        "name": name,
                    }
                },
            },
        )
        return bool(review["status"].get("allowed"))

    assert await can("patch", records.CRD["metadata"]["name"])
    assert not await can("patch", "applications.argoproj.io")
    assert not await can("delete", records.CRD["metadata"]["name"])
