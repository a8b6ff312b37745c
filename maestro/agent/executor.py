"""A work's executor: the ServiceAccount whose permissions each write is checked against.

As OCM's work agent does (``spec.executor`` of a ManifestWork, ``executer`` in Maestro's
ManifestBundle; both spellings are read): when a bundle names an executor
``{subject: {type: ServiceAccount, serviceAccount: {namespace, name}}}``, the agent asks its cluster,
with one SubjectAccessReview per verb, whether that ServiceAccount may write each manifest before
writing it — ``create``, ``update``, ``patch`` and ``get`` on the object (group, version, resource,
namespace, name), and ``delete`` too when the object will be the bundle's own (not orphaned by the
deleteOption), because deleting the bundle or dropping the manifest later deletes it without
asking again. A ReadOnly manifest needs only ``get`` (OCM asks for the write verbs there too; the
agent never writes it). A refused manifest fails alone, its message naming the executor and the
verbs, and is not written; the others of the bundle go on. The ServiceAccount need not exist: the
review is of its name and groups.

RBAC objects are checked for escalation too, as the API server would check the executor itself: a
Role or ClusterRole needs ``escalate`` on it, or every permission it grants; a binding needs
``bind`` on the role it references. (OCM instead makes a dry-run create impersonating the executor;
the agent holds no impersonation right.) Without an executor nothing is checked: the agent's own
RBAC is then the limit.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from maestro.agent.errors import ManifestError
from maestro.agent.manifests import READ_ONLY, ObjectRef

JsonObject = dict[str, Any]
#: asks the cluster one SubjectAccessReview ``spec``; True when allowed
Review = Callable[[JsonObject], Awaitable[bool]]

SERVICE_ACCOUNT = "ServiceAccount"
RBAC_GROUP = "rbac.authorization.k8s.io"
WRITE_VERBS = ("create", "update", "patch", "get")


@dataclass(frozen=True, slots=True)
class Executor:
    namespace: str
    name: str

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.name}"

    @property
    def groups(self) -> list[str]:
        return ["system:serviceaccounts", f"system:serviceaccounts:{self.namespace}", "system:authenticated"]

    def describe(self) -> str:
        return f"ServiceAccount {self.namespace}/{self.name}"


def parse(bundle: Mapping[str, Any]) -> Executor | None:
    """The bundle's executor, None when it names none; a `ManifestError` names the bad field."""
    key = "executor" if bundle.get("executor") is not None else "executer"
    raw = bundle.get(key)
    if raw is None:
        return None
    subject = raw.get("subject") if isinstance(raw, Mapping) else None
    if not isinstance(subject, Mapping):
        raise ManifestError(
            f"{key}.subject is required: {{type: ServiceAccount, serviceAccount: {{namespace, name}}}}"
        )
    kind = subject.get("type") or SERVICE_ACCOUNT
    if kind != SERVICE_ACCOUNT:
        raise ManifestError(f"{key}.subject.type {kind!r} is not supported: only {SERVICE_ACCOUNT}")
    account = subject.get("serviceAccount")
    namespace = account.get("namespace") if isinstance(account, Mapping) else None
    name = account.get("name") if isinstance(account, Mapping) else None
    if not isinstance(namespace, str) or not namespace or not isinstance(name, str) or not name:
        raise ManifestError(f"{key}.subject.serviceAccount needs a namespace and a name")
    return Executor(namespace, name)


def verbs(strategy: str, owned: bool) -> tuple[str, ...]:
    """What the executor must be allowed on a manifest's object before the agent writes it."""
    if strategy == READ_ONLY:
        return ("get",)
    return (*WRITE_VERBS, "delete") if owned else WRITE_VERBS


def _review(executor: Executor, attributes: JsonObject) -> JsonObject:
    return {"user": executor.user, "groups": executor.groups, **attributes}


def _resource(verb: str, group: str, version: str, resource: str, namespace: str, name: str) -> JsonObject:
    attrs = {"verb": verb, "group": group, "version": version, "resource": resource}
    if namespace:
        attrs["namespace"] = namespace
    if name:
        attrs["name"] = name
    return {"resourceAttributes": attrs}


async def refusal(
    review: Review, executor: Executor, ref: ObjectRef, wanted: tuple[str, ...], body: Mapping[str, Any]
) -> str | None:
    """Why the executor may not have the agent write ``body`` at ``ref``; None when it may."""
    denied = []
    for verb in wanted:
        attrs = _resource(verb, ref.group, ref.version, ref.resource, ref.namespace, ref.name)
        if not await review(_review(executor, attrs)):
            denied.append(verb)
    if denied:
        return (
            f"not allowed: the executor {executor.describe()} may not {', '.join(denied)} "
            f"{ref.describe()} (SubjectAccessReview); bind it to a Role or ClusterRole that grants it"
        )
    if ref.group == RBAC_GROUP and "create" in wanted:  # it will be written: check what it grants
        return await _escalation(review, executor, ref, body)
    return None


async def _escalation(
    review: Review, executor: Executor, ref: ObjectRef, body: Mapping[str, Any]
) -> str | None:
    if ref.resource in ("roles", "clusterroles"):
        escalate = _resource("escalate", RBAC_GROUP, "", ref.resource, ref.namespace, ref.name)
        if await review(_review(executor, escalate)):
            return None
        for rule in body.get("rules") or ():
            missing = await _rule_missing(review, executor, rule, ref.namespace)
            if missing:
                return (
                    f"not allowed: the executor {executor.describe()} may not grant {missing} in "
                    f"{ref.describe()}: it holds neither that permission nor escalate on the role "
                    "(permission escalation)"
                )
        return None
    if ref.resource in ("rolebindings", "clusterrolebindings"):
        role = body.get("roleRef") or {}
        plural = "clusterroles" if role.get("kind") == "ClusterRole" else "roles"
        namespace = "" if plural == "clusterroles" else ref.namespace
        bind = _resource("bind", RBAC_GROUP, "", plural, namespace, str(role.get("name") or ""))
        if not await review(_review(executor, bind)):
            return (
                f"not allowed: the executor {executor.describe()} may not bind {plural} "
                f"{role.get('name')!r} in {ref.describe()} (permission escalation)"
            )
    return None


async def _rule_missing(
    review: Review, executor: Executor, rule: Mapping[str, Any], namespace: str
) -> str | None:
    rule_verbs = list(rule.get("verbs") or ())
    urls = list(rule.get("nonResourceURLs") or ())
    for verb, url in itertools.product(rule_verbs, urls):
        attrs = {"nonResourceAttributes": {"verb": verb, "path": url}}
        if not await review(_review(executor, attrs)):
            return f"{verb} {url}"
    names = list(rule.get("resourceNames") or ()) or [""]
    groups, resources = list(rule.get("apiGroups") or ()), list(rule.get("resources") or ())
    for verb, group, resource, name in itertools.product(rule_verbs, groups, resources, names):
        plural, _, sub = str(resource).partition("/")
        attrs = _resource(verb, group, "", plural, namespace, name)
        if sub:
            attrs["resourceAttributes"]["subresource"] = sub
        if not await review(_review(executor, attrs)):
            what = f"{resource}.{group}" if group else str(resource)
            return f"{verb} {what}{f' {name}' if name else ''}"
    return None
