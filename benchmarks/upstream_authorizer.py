"""What upstream Maestro asks whether a caller may publish: a kube-apiserver, as it is deployed.

With ``--grpc-authn-type=mtls`` upstream's server takes the caller's user (the certificate's
common name) and groups (its organizations) from the verified client certificate, and before every
``Publish`` (``pub``) and ``Subscribe`` (``sub``) asks the Kubernetes API a SubjectAccessReview for
the non-resource URL ``/sources/<the event's source>``; it caches no decision. Here that API is a
kube-apiserver of the run's own (on an etcd of its own, RBAC authorization), where a ClusterRole
lets the publishing source ``pub`` and ``sub`` on its own source's URL only, and upstream's server
asks as an identity allowed to create SubjectAccessReviews and nothing more.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from localinfra import etcd, kube, kubectl, pki
from localinfra.environment import Environment
from trust.identity import Identity

#: the kube-apiserver's name in the run's environment (its process: ``<name>/kube-apiserver``)
NAME = "upstream-authz"
#: the user upstream's server asks as
REVIEWER = "maestro-upstream-reviewer"


def rbac(source: Identity) -> list[dict[str, Any]]:
    rbac = "rbac.authorization.k8s.io/v1"
    publisher = f"maestro-source-{source.name}"
    return [
        {
            "apiVersion": rbac,
            "kind": "ClusterRole",
            "metadata": {"name": publisher},
            "rules": [{"nonResourceURLs": [f"/sources/{source.name}"], "verbs": ["pub", "sub"]}],
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRoleBinding",
            "metadata": {"name": publisher},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": publisher},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": source.name}],
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRole",
            "metadata": {"name": REVIEWER},
            "rules": [
                {
                    "apiGroups": ["authorization.k8s.io"],
                    "resources": ["subjectaccessreviews"],
                    "verbs": ["create"],
                }
            ],
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRoleBinding",
            "metadata": {"name": REVIEWER},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": REVIEWER},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": REVIEWER}],
        },
    ]


def start(env: Environment, source: Identity) -> Path:
    """Start the kube-apiserver, let ``source`` publish as itself; answer the kubeconfig upstream's
    server is given (``--grpc-authorizer-config``)."""
    cluster = kube.start(env, NAME, etcd.start(env, f"{NAME}-etcd"), controller_manager=False)
    kubectl.apply(cluster.kubeconfig, rbac(source))
    folder, ca = env.path("clusters", NAME), pki.ensure_ca(env.path("pki"))
    reviewer = pki.issue(ca, folder, "reviewer", cn=REVIEWER)
    config = kube.kubeconfig_dict(NAME, cluster.server, ca.cert, reviewer)
    return kube.write_kubeconfig(folder / "reviewer.kubeconfig", config)


def process_names() -> dict[str, str]:
    """Its processes in the run's environment, by the label the benchmark's CPU figures use."""
    return {f"{NAME}/kube-apiserver": "authorizer", f"{NAME}-etcd": "authorizer-etcd"}
