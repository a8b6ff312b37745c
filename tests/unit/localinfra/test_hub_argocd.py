"""The hub Argo CD's settings: its RBAC policy and configuration objects."""

from __future__ import annotations

import base64

from localinfra import hub_argocd


def test_policy_grants_no_default_role_and_refuses_acting_on_applications_to_the_admin() -> None:
    policy = hub_argocd.rbac_policy()
    assert policy["policy.default"] == ""
    lines = policy["policy.csv"].splitlines()
    for action in ("sync", "delete", "update", "override", "action/*"):
        assert f"p, role:admin, applications, {action}, */*, deny" in lines
    assert not any(line.endswith(", allow") for line in lines)  # the admin's grants are Argo CD's own


def test_the_server_certificate_is_argocd_server_tls_and_the_url_is_set() -> None:
    released = [
        {"kind": "ConfigMap", "metadata": {"name": name, "namespace": "argocd"}}
        for name in ("argocd-cm", "argocd-rbac-cm")
    ]
    objects = hub_argocd.with_hub_settings(released, "https://127.0.0.1:8443", (b"CERT", b"KEY"))
    by_name = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    secret = by_name[("Secret", hub_argocd.SERVER_TLS_SECRET)]
    assert secret["type"] == "kubernetes.io/tls"
    assert base64.b64decode(secret["data"]["tls.crt"]) == b"CERT"
    cm = by_name[("ConfigMap", "argocd-cm")]["data"]
    assert cm["url"] == "https://127.0.0.1:8443"
    assert cm["users.anonymous.enabled"] == "false"
    assert cm["exec.enabled"] == "false"
    assert by_name[("ConfigMap", "argocd-rbac-cm")]["data"] == hub_argocd.rbac_policy()
