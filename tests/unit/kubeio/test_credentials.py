"""Credentials from a kubeconfig, read as kubectl reads it: a token user's requests carry its token
(an operator's ServiceAccount, an EKS cluster's exec plugin), a certificate user's carry none and
present its certificate; paths are relative to the kubeconfig's folder; in a pod, the mounted
account; kopf gets the same."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kubeio import credentials, kopf_operator
from trust.authority import CertificateAuthority, Issued
from trust.identity import Identity


def kubeconfig(
    user: dict[str, Any], server: str = "http://127.0.0.1:6443", ca: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server, **(ca or {})}}],
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


def _ca_and_client() -> tuple[bytes, Issued]:
    ca = CertificateAuthority.create()
    return ca.cert_pem, ca.issue(Identity.admin("reader"))


def test_inline_certificates_make_a_verifying_context_with_the_client_pair() -> None:
    ca_pem, issued = _ca_and_client()
    creds = credentials.from_kubeconfig_dict(
        kubeconfig(
            {
                "client-certificate-data": base64.b64encode(issued.cert_pem).decode(),
                "client-key-data": base64.b64encode(issued.key_pem).decode(),
            },
            server="https://127.0.0.1:6443",
            ca={"certificate-authority-data": base64.b64encode(ca_pem).decode()},
        )
    )

    assert creds.ssl is not None and creds.ssl.verify_mode == ssl.CERT_REQUIRED
    assert creds.authorization == ""
    ca_der = x509.load_pem_x509_certificate(ca_pem).public_bytes(serialization.Encoding.DER)
    assert creds.ssl.get_ca_certs(binary_form=True) == [ca_der]


def test_file_paths_are_relative_to_the_kubeconfigs_folder(tmp_path: Path) -> None:
    ca_pem, issued = _ca_and_client()
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "ca.crt").write_bytes(ca_pem)
    (tmp_path / "pki" / "me.crt").write_bytes(issued.cert_pem)
    (tmp_path / "pki" / "me.key").write_bytes(issued.key_pem)
    (tmp_path / "token").write_text("from.file\n")
    user = {"client-certificate": "pki/me.crt", "client-key": "pki/me.key", "tokenFile": "token"}
    path = tmp_path / "config"
    path.write_text(
        yaml.safe_dump(kubeconfig(user, server="https://h:6443", ca={"certificate-authority": "pki/ca.crt"}))
    )

    endpoint = credentials.endpoint_from_kubeconfig(path)

    assert (endpoint.ca, endpoint.certificate, endpoint.key) == (ca_pem, issued.cert_pem, issued.key_pem)
    assert endpoint.authorization == "Bearer from.file"
    assert credentials.from_kubeconfig(path).ssl is not None


def test_an_exec_plugin_gives_its_token_and_is_run_again_on_reload(tmp_path: Path) -> None:
    """As EKS's ``aws eks get-token``: the plugin prints an ExecCredential; reloading runs it again."""
    counter = tmp_path / "runs"
    plugin = tmp_path / "plugin.sh"
    plugin.write_text(
        "#!/bin/sh\n"
        f'echo x >> "{counter}"\n'
        'n=$(wc -l < "' + str(counter) + '")\n'
        'echo "{\\"kind\\": \\"ExecCredential\\", \\"status\\": {\\"token\\": \\"$CLUSTER-$n\\"}}"\n'
    )
    plugin.chmod(0o755)
    exec_spec = {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": str(plugin),
        "env": [{"name": "CLUSTER", "value": "eks"}],
    }

    creds = credentials.from_kubeconfig_dict(kubeconfig({"exec": exec_spec}))
    assert creds.authorization == "Bearer eks-1"
    assert creds.reload is not None and creds.reload().authorization == "Bearer eks-2"


def test_a_failing_exec_plugin_is_named_with_its_error(tmp_path: Path) -> None:
    plugin = tmp_path / "fails.sh"
    plugin.write_text("#!/bin/sh\necho 'no SSO session' >&2\nexit 3\n")
    plugin.chmod(0o755)

    with pytest.raises(credentials.CredentialsError, match="exited 3: no SSO session"):
        credentials.from_kubeconfig_dict(kubeconfig({"exec": {"command": str(plugin)}}))


def test_a_context_that_is_not_there_is_named_with_the_ones_that_are() -> None:
    with pytest.raises(credentials.CredentialsError, match=r"no context 'other' in contexts \(it has: c\)"):
        credentials.from_kubeconfig_dict(kubeconfig({"token": "t"}), context="other")


def test_in_a_pod_the_mounted_account_is_used(tmp_path: Path) -> None:
    ca_pem, _ = _ca_and_client()
    (tmp_path / "token").write_text("pod.token")
    (tmp_path / "ca.crt").write_bytes(ca_pem)
    env = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}

    endpoint = credentials.endpoint_in_cluster(tmp_path, env)

    assert endpoint.server == "https://[fd00::1]:443"
    assert (endpoint.ca, endpoint.authorization) == (ca_pem, "Bearer pod.token")
    with pytest.raises(credentials.CredentialsError, match="not in a pod"):
        credentials.endpoint_in_cluster(tmp_path, {})


def test_kopf_gets_the_inline_certificates(tmp_path: Path) -> None:
    ca_pem, issued = _ca_and_client()
    user = {
        "client-certificate-data": base64.b64encode(issued.cert_pem).decode(),
        "client-key-data": base64.b64encode(issued.key_pem).decode(),
    }
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            kubeconfig(
                user,
                server="https://h:6443",
                ca={"certificate-authority-data": base64.b64encode(ca_pem).decode()},
            )
        )
    )

    info = kopf_operator.connection(str(path))

    assert (info.ca_data, info.certificate_data, info.private_key_data) == (
        ca_pem,
        issued.cert_pem,
        issued.key_pem,
    )
    assert info.token is None
