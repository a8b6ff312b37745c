"""The management Argo CD: the platform's own configuration, synced from Git onto the hub.

A real Argo CD application controller and repo-server run for the hub (processes
``hub/gitops-application-controller`` and ``hub/gitops-repo-server``, built like a worker's in
``localinfra.argocd``: mTLS between them, Redis over TLS with a client certificate and a password).
They share Argo CD's namespace on the hub with the hub's mirror Applications and its argocd-server,
and a Redis given by the caller (argocd-server's, so it shows what this controller caches) or their
own. What keeps them to the platform's own Applications:

- **the mirrors are skipped**: every mirror the hub controllers write carries
  ``argocd.argoproj.io/skip-reconcile: "true"``, and Argo CD's controller neither reconciles nor
  writes an Application so annotated (``canProcessApp``);
- **a project of its own** (``platform``): sources the platform's repositories only, destination
  the hub itself, and only the platform's kinds (definitions, Compositions, claims, ApplicationSets,
  and the teams' Namespaces);
- **least privilege on the hub**: the controller talks to the hub as the ServiceAccount
  ``argocd/fleetplane-gitops``, which may read and write Applications (for their status) and read
  the rest of Argo CD's configuration in its namespace, manage the platform's kinds, and nothing
  else: not Secrets outside ``argocd``, not workloads, not the mirrors' ApplicationSets' owners;
- **a cache of the platform's kinds only** (``resource.inclusions``): the controller watches the
  platform's kinds (and CRDs), never the hub's thousands of mirror Applications or its Secrets.

The health of the platform's objects comes from ``localinfra.hub_gitops_health``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from localinfra import argocd, kube, kubectl, redis
from localinfra.environment import Environment
from localinfra.hub_gitops_health import argocd_cm_data

NAMESPACE = argocd.NAMESPACE
#: the role naming its processes, folder and identities (``hub/gitops-...``)
ROLE = "gitops"
PROJECT = "platform"
APPLICATION = "platform"
SERVICE_ACCOUNT = "fleetplane-gitops"
FIELD_MANAGER = "fleetplane-gitops"
IN_CLUSTER = "https://kubernetes.default.svc"
#: an Application is refreshed from Git when this annotation is set (what a Git webhook does)
REFRESH_ANNOTATION = "argocd.argoproj.io/refresh"
_ALL = ["get", "list", "watch", "create", "update", "patch", "delete"]
_READ = ["get", "list", "watch"]

#: the API groups of the platform's kinds: the provisioner's own and the default definition's (a
#: definition serving another group needs it added here, to the rules and the project)
PLATFORM_GROUPS = ("fleetplane.io", "platform.fleetplane.io")
#: what the platform's Git repositories may hold, as RBAC rules: (API group, resources, verbs).
#: Namespaces may be created but never deleted: a pruned team namespace would take its claims along.
MANAGED_RULES: tuple[tuple[str, tuple[str, ...], list[str]], ...] = (
    ("fleetplane.io", ("compositeresourcedefinitions", "compositions"), _ALL),
    ("platform.fleetplane.io", ("*",), _ALL),
    ("argoproj.io", ("applicationsets",), _ALL),
    ("", ("namespaces",), ["get", "list", "watch", "create", "update", "patch"]),
)
#: the same, as the project's resource whitelists: (group, kind)
CLUSTER_KINDS = (
    ("fleetplane.io", "CompositeResourceDefinition"),
    ("fleetplane.io", "Composition"),
    ("platform.fleetplane.io", "*"),
    ("", "Namespace"),
)
NAMESPACED_KINDS = (("platform.fleetplane.io", "*"), ("argoproj.io", "ApplicationSet"))
#: what the controller caches (``resource.inclusions``): the platform's kinds, and the CRDs (read
#: only) whose changes tell it that a definition started or stopped serving a kind
INCLUSIONS = [
    {"apiGroups": list(PLATFORM_GROUPS), "kinds": ["*"], "clusters": ["*"]},
    {"apiGroups": ["apiextensions.k8s.io"], "kinds": ["CustomResourceDefinition"], "clusters": ["*"]},
    {"apiGroups": ["argoproj.io"], "kinds": ["ApplicationSet"], "clusters": ["*"]},
    {"apiGroups": [""], "kinds": ["Namespace"], "clusters": ["*"]},
]


@dataclass(frozen=True)
class HubGitOps:
    argocd: argocd.ArgoCD
    namespace: str
    #: the controller's own kubeconfig: its ServiceAccount's token
    kubeconfig: Path


def cluster_rules() -> list[dict[str, Any]]:
    """What the management Argo CD may do across the hub (see the module's doc)."""
    rules = [
        {"apiGroups": [group], "resources": list(resources), "verbs": verbs}
        for group, resources, verbs in MANAGED_RULES
    ]
    # Argo CD caches every kind of the platform's groups (a list it may not make would fail the
    # whole cache) and follows new kinds as CRDs come and go: read only.
    return [
        *rules,
        {"apiGroups": list(PLATFORM_GROUPS), "resources": ["*"], "verbs": _READ},
        {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": _READ},
    ]


def namespaced_rules() -> list[dict[str, Any]]:
    """What the management Argo CD may do in Argo CD's namespace: its Applications' status, and
    reading its configuration."""
    return [
        {"apiGroups": ["argoproj.io"], "resources": ["applications"], "verbs": [*_READ, "update", "patch"]},
        {"apiGroups": ["argoproj.io"], "resources": ["appprojects"], "verbs": _READ},
        {"apiGroups": [""], "resources": ["configmaps", "secrets"], "verbs": _READ},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
    ]


def rbac_objects(namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    """The ServiceAccount of the management Argo CD and what it may do (see the module's doc)."""
    subject = [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": namespace}]
    name = SERVICE_ACCOUNT
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name},
            "rules": cluster_rules(),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": subject,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": name, "namespace": namespace},
            "rules": namespaced_rules(),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": subject,
        },
    ]


def project(repos: Sequence[str], namespace: str = NAMESPACE) -> dict[str, Any]:
    """The AppProject of the platform's own Applications: ``repos`` to the hub, platform kinds only."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AppProject",
        "metadata": {"name": PROJECT, "namespace": namespace},
        "spec": {
            "description": "the platform's own configuration, from Git",
            "sourceRepos": list(repos),
            "destinations": [{"server": IN_CLUSTER, "namespace": "*"}],
            "clusterResourceWhitelist": [{"group": g, "kind": k} for g, k in CLUSTER_KINDS],
            "namespaceResourceWhitelist": [{"group": g, "kind": k} for g, k in NAMESPACED_KINDS],
        },
    }


def application(
    repo_url: str,
    *,
    path: str = ".",
    revision: str = "HEAD",
    name: str = APPLICATION,
    namespace: str = NAMESPACE,
) -> dict[str, Any]:
    """The management Application: every manifest under ``path`` of the platform's repository,
    applied to the hub and kept there (pruned when removed from Git, put back when changed by hand)."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "project": PROJECT,
            "source": {
                "repoURL": repo_url,
                "targetRevision": revision,
                "path": path,
                "directory": {"recurse": True},
            },
            "destination": {"server": IN_CLUSTER},
            "syncPolicy": {
                "automated": {"prune": True, "selfHeal": True},
                "retry": {"limit": -1, "backoff": {"duration": "5s", "factor": 2, "maxDuration": "1m"}},
            },
        },
    }


def controller_settings() -> dict[str, str]:
    """What the management Argo CD adds to ``argocd-cm``: the platform's health checks and the
    controller's resource inclusions."""
    return {
        **argocd_cm_data(),
        "resource.inclusions": yaml.safe_dump(INCLUSIONS, sort_keys=False),
        # A kind it may not list is left out of its cache, not an error for every Application.
        "resource.respectRBAC": "normal",
    }


def config_objects(namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    """Argo CD's configuration objects as released, with ``controller_settings`` in ``argocd-cm``."""
    objects = [o for o in argocd.config_objects(namespace) if o["kind"] != "AppProject"]
    for obj in objects:
        if obj["kind"] == "ConfigMap" and obj["metadata"]["name"] == "argocd-cm":
            obj["data"] = {**(obj.get("data") or {}), **controller_settings()}
    return objects


def install(hub: kube.Cluster, repos: Sequence[str], *, namespace: str = NAMESPACE) -> None:
    """Argo CD's CRDs and configuration on the hub (server-side applied under a field manager of
    its own, so that other writers' fields, argocd-server's say, are left alone), the project and
    the ServiceAccount."""
    argocd.install_crds(hub)
    kubectl.apply(
        hub.kubeconfig,
        [*config_objects(namespace), project(repos, namespace), *rbac_objects(namespace)],
        field_manager=FIELD_MANAGER,
    )


def start(
    env: Environment,
    hub: kube.Cluster,
    repos: Sequence[str],
    *,
    cache: redis.Redis | None = None,
    namespace: str = NAMESPACE,
    resync_seconds: int = 10,
) -> HubGitOps:
    """Install (``install``) and run the management Argo CD on the hub, its project sourcing
    ``repos``; ``cache`` is the Redis it shares (None: one of its own). Git is polled every
    ``resync_seconds``; ``refresh`` asks for a poll at once."""
    install(hub, repos, namespace=namespace)
    folder = env.path("clusters", hub.name, ROLE)
    token = kube.token_kubeconfig(hub, namespace, SERVICE_ACCOUNT, folder / "account.kubeconfig", hours=48)
    restricted = kube.Cluster(hub.name, hub.server, token)
    running = argocd.start_processes(
        env,
        restricted,
        namespace=namespace,
        role=ROLE,
        cache=cache,
        # Each resource's health in the Application itself (Argo CD 3 keeps it in Redis alone by
        # default): `kubectl get application platform -o yaml` shows which claim is not Ready.
        controller_args=[
            "--app-resync",
            str(resync_seconds),
            "--app-resync-jitter",
            "0",
            "--persist-resource-health",
        ],
    )
    return HubGitOps(running, namespace, token)


def is_running(env: Environment, hub: str = "hub") -> bool:
    return argocd.is_running(env, hub, role=ROLE)


def create_application(hub: kube.Cluster, app: dict[str, Any]) -> None:
    kubectl.apply(hub.kubeconfig, [app], field_manager=FIELD_MANAGER)


def refresh(hub: kube.Cluster, name: str = APPLICATION, namespace: str = NAMESPACE) -> None:
    """Have Argo CD read Git for ``name`` now, as a push webhook would, not at its next poll."""
    patch = {"metadata": {"annotations": {REFRESH_ANNOTATION: "normal"}}}
    kubectl.run(
        hub.kubeconfig,
        "patch",
        "applications.argoproj.io",
        name,
        "-n",
        namespace,
        "--type",
        "merge",
        "-p",
        json.dumps(patch),
    )
