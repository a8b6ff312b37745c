"""A work's executor: each write is checked with SubjectAccessReviews for that ServiceAccount.

Cases (through `MemoryApplier`, whose cluster answers reviews from a small RBAC table): without an
executor nothing is asked; with one, each manifest is reviewed for create, update, patch and get
(and delete when the bundle will own it; not when orphaned), with its group, version, resource,
namespace and name, as the ServiceAccount's user and groups; a refused manifest fails alone with a
message naming the executor and the verbs, is not written or recorded, and the bundle's Applied
condition says so; ReadOnly needs only get; both spellings (executor, executer) are read; a
malformed executor fails every manifest naming the field; a review that errors fails its manifest;
a Role needs escalate or every permission it grants, a binding needs bind on its role.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from maestro.agent import bundle_status, executor
from maestro.agent.errors import ClusterError
from maestro.agent.memory import MemoryApplier

RID = "7c4e0a52-4a53-4d5e-9b7e-0c2b1f3e9a11"
SA = {"namespace": "team", "name": "deployer"}
USER = "system:serviceaccount:team:deployer"
EXECUTOR = {"subject": {"type": "ServiceAccount", "serviceAccount": SA}}
ALL = ("create", "update", "patch", "get", "delete")


def cm(name: str, ns: str = "team") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": {}}


class Rbac:
    """Allowed (verb, group, resource, namespace, name) tuples; "*" for any name; records reviews."""

    def __init__(self, allowed: Iterable[tuple[str, str, str, str, str]]) -> None:
        self.allowed = set(allowed)
        self.asked: list[dict[str, Any]] = []

    def __call__(self, spec: dict[str, Any]) -> bool:
        self.asked.append(spec)
        if spec["user"] != USER or "system:serviceaccounts:team" not in spec["groups"]:
            return False
        if "nonResourceAttributes" in spec:
            attrs = spec["nonResourceAttributes"]
            return (attrs["verb"], "", attrs["path"], "", "") in self.allowed
        a = spec["resourceAttributes"]
        key = (a["verb"], a["group"], a["resource"], a.get("namespace", ""))
        return (*key, a.get("name", "")) in self.allowed or (*key, "*") in self.allowed


def grant(verbs: Iterable[str], group: str, resource: str, ns: str) -> set[tuple[str, str, str, str, str]]:
    return {(v, group, resource, ns, "*") for v in verbs}


def applier(rbac: Rbac) -> MemoryApplier:
    agent = MemoryApplier("c1")
    agent.backend.access = rbac
    return agent


async def test_without_an_executor_nothing_is_reviewed() -> None:
    rbac = Rbac(())
    result = await applier(rbac).apply(RID, 1, {"manifests": [cm("a")]})
    assert result.ok and rbac.asked == []


async def test_each_write_is_reviewed_and_a_refused_manifest_fails_alone() -> None:
    rbac = Rbac(grant(ALL, "", "configmaps", "team"))
    agent = applier(rbac)
    bundle = {"manifests": [cm("a"), cm("b", ns="kube-system")], "executor": EXECUTOR}
    result = await agent.apply(RID, 1, bundle)
    allowed, refused = result.outcomes
    assert allowed.applied and not refused.applied
    assert refused.error == (
        "ConfigMap kube-system/b: not allowed: the executor ServiceAccount team/deployer may not "
        "create, update, patch, get, delete configmaps kube-system/b (SubjectAccessReview); bind it to "
        "a Role or ClusterRole that grants it"
    )
    assert ("", "configmaps", "kube-system", "b") not in agent.backend.objects
    assert [r.name for r in (result.record.applied_resources if result.record else ())] == ["a"]
    asked_a = [s["resourceAttributes"] for s in rbac.asked if s["resourceAttributes"]["name"] == "a"]
    assert asked_a == [
        {"verb": v, "group": "", "version": "v1", "resource": "configmaps", "namespace": "team", "name": "a"}
        for v in ALL
    ]
    assert rbac.asked[0]["groups"] == [
        "system:serviceaccounts",
        "system:serviceaccounts:team",
        "system:authenticated",
    ]
    report = bundle_status.apply_status(result)
    applied = next(c for c in report["conditions"] if c["type"] == "Applied")
    assert (applied["status"], applied["reason"]) == ("False", "AppliedManifestWorkFailed")
    entry = report["resourceStatus"][1]["conditions"][0]
    assert (entry["status"], entry["reason"]) == ("False", "AppliedManifestFailed")
    assert "may not create" in entry["message"]


async def test_an_orphaned_object_needs_no_delete_and_read_only_needs_only_get() -> None:
    rbac = Rbac(grant(("create", "update", "patch", "get"), "", "configmaps", "team"))
    bundle = {
        "manifests": [cm("kept"), cm("watched")],
        "deleteOption": {"propagationPolicy": "Orphan"},
        "manifestConfigs": [
            {
                "resourceIdentifier": {"resource": "configmaps", "namespace": "team", "name": "watched"},
                "updateStrategy": {"type": "ReadOnly"},
            }
        ],
        "executor": EXECUTOR,
    }
    result = await applier(rbac).apply(RID, 1, bundle)
    assert result.ok, result.outcomes
    verbs = [(s["resourceAttributes"]["name"], s["resourceAttributes"]["verb"]) for s in rbac.asked]
    assert verbs == [("kept", v) for v in ("create", "update", "patch", "get")] + [("watched", "get")]


async def test_the_upstream_spelling_is_read_too() -> None:
    rbac = Rbac(())
    result = await applier(rbac).apply(RID, 1, {"manifests": [cm("a")], "executer": EXECUTOR})
    assert not result.ok and "may not create" in (result.outcomes[0].error or "")


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ({"subject": {"type": "User", "user": "x"}}, "executor.subject.type 'User' is not supported"),
        (
            {"subject": {"type": "ServiceAccount"}},
            "executor.subject.serviceAccount needs a namespace and a name",
        ),
        ({}, "executor.subject is required"),
    ],
)
async def test_a_malformed_executor_fails_every_manifest(raw: dict[str, Any], want: str) -> None:
    agent = applier(Rbac(()))
    result = await agent.apply(RID, 1, {"manifests": [cm("a"), cm("b")], "executor": raw})
    assert [o.applied for o in result.outcomes] == [False, False]
    assert all(want in (o.error or "") for o in result.outcomes)
    assert agent.backend.objects == {}


async def test_a_review_that_fails_fails_its_manifest() -> None:
    def broken(spec: dict[str, Any]) -> bool:
        raise ClusterError("subjectaccessreviews is forbidden (HTTP 403)", status=403)

    agent = MemoryApplier("c1")
    agent.backend.access = broken
    result = await agent.apply(RID, 1, {"manifests": [cm("a")], "executor": EXECUTOR})
    assert result.outcomes[0].error == (
        "ConfigMap team/a: could not check the executor's permissions: "
        "subjectaccessreviews is forbidden (HTTP 403)"
    )


ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "Role",
    "metadata": {"name": "reader", "namespace": "team"},
    "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}],
}
BINDING = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "RoleBinding",
    "metadata": {"name": "reader", "namespace": "team"},
    "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
    "subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": "team"}],
}
RBAC = grant(ALL, "rbac.authorization.k8s.io", "roles", "team") | grant(
    ALL, "rbac.authorization.k8s.io", "rolebindings", "team"
)


async def test_a_role_granting_more_than_the_executor_holds_is_an_escalation() -> None:
    result = await applier(Rbac(RBAC)).apply(RID, 1, {"manifests": [ROLE], "executor": EXECUTOR})
    assert result.outcomes[0].error == (
        "Role team/reader: not allowed: the executor ServiceAccount team/deployer may not grant get "
        "secrets in roles.rbac.authorization.k8s.io team/reader: it holds neither that permission nor "
        "escalate on the role (permission escalation)"
    )
    holds = Rbac(RBAC | grant(("get", "list"), "", "secrets", "team"))
    assert (await applier(holds).apply(RID, 1, {"manifests": [ROLE], "executor": EXECUTOR})).ok
    escalates = Rbac(RBAC | {("escalate", "rbac.authorization.k8s.io", "roles", "team", "reader")})
    assert (await applier(escalates).apply(RID, 1, {"manifests": [ROLE], "executor": EXECUTOR})).ok


async def test_a_binding_needs_bind_on_its_role() -> None:
    result = await applier(Rbac(RBAC)).apply(RID, 1, {"manifests": [BINDING], "executor": EXECUTOR})
    assert result.outcomes[0].error == (
        "RoleBinding team/reader: not allowed: the executor ServiceAccount team/deployer may not bind "
        "clusterroles 'admin' in rolebindings.rbac.authorization.k8s.io team/reader (permission escalation)"
    )
    binds = Rbac(RBAC | {("bind", "rbac.authorization.k8s.io", "clusterroles", "", "admin")})
    assert (await applier(binds).apply(RID, 1, {"manifests": [BINDING], "executor": EXECUTOR})).ok


def test_verbs() -> None:
    assert executor.verbs("ServerSideApply", owned=True) == ("create", "update", "patch", "get", "delete")
    assert executor.verbs("Update", owned=False) == ("create", "update", "patch", "get")
    assert executor.verbs("ReadOnly", owned=True) == ("get",)
