"""Credentials from a kubeconfig: a token user's requests carry its token (an operator's
ServiceAccount, an EKS cluster's), a certificate user's carry none; kopf gets the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from kubeio import credentials, kopf_operator


def kubeconfig(user: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:6443"}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "c",
    }


def test_a_token_user_sends_its_token() -> None:
    creds = credentials.from_kubeconfig_dict(kubeconfig({"token": "abc.def"}))

    assert creds.server == "http://127.0.0.1:6443"
    assert creds.authorization == "Bearer abc.def"


def test_a_user_without_a_token_sends_no_authorization_header() -> None:
    creds = credentials.from_kubeconfig_dict(kubeconfig({"username": "nobody"}))

    assert creds.authorization == ""


def test_kopf_logs_in_with_the_same_token(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig({"token": "abc.def"})))

    info = kopf_operator.connection(str(path))

    assert (info.scheme, info.token) == ("Bearer", "abc.def")
