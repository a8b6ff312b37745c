"""Where a cluster is and how to prove who we are: read from a kubeconfig or the pod's account.

A kubeconfig is read as kubectl reads it: the chosen context's cluster (``server``, its CA as a file
or inline, ``insecure-skip-tls-verify``) and user (a ``token``, a ``tokenFile``, an ``exec``
plugin such as EKS's, client certificates as files or inline, or a user name and password). In a
pod, the mounted ServiceAccount token and CA. We keep only what an HTTP client needs, and read no
Kubernetes client library for it: the agent's image carries none. Loading may block (an exec
plugin runs), so async callers load in a thread. Credentials remember how they were loaded
(``reload``): a token rotated on disk (a projected ServiceAccount token, a kubeconfig's
``tokenFile``) or an exec plugin's expired credential is read again when the server refuses the
old one.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import json
import os
import ssl
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

#: what a pod's ServiceAccount mounts
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
_EXEC_TIMEOUT = 60


class CredentialsError(Exception):
    """A kubeconfig or pod account that does not say how to reach and authenticate to a cluster;
    the message names the field and the fix."""


@dataclass(frozen=True)
class Endpoint:
    """A cluster's address and our proof of identity, as read (PEM bytes, not yet an SSL context)."""

    server: str
    ca: bytes | None = None
    insecure: bool = False
    certificate: bytes | None = None
    key: bytes | None = None
    # "Bearer <token>", "Basic <user:password>", or "" for client certificates
    authorization: str = ""

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.server.startswith("https://"):
            return None
        context = ssl.create_default_context(cadata=self.ca.decode() if self.ca else None)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.certificate and self.key:
            # the ssl module loads a key pair from files only: a private folder, gone once read
            with tempfile.TemporaryDirectory(prefix="kubeio-") as folder:
                cert, key = Path(folder) / "tls.crt", Path(folder) / "tls.key"
                cert.write_bytes(self.certificate)
                key.touch(mode=0o600)
                key.write_bytes(self.key)
                context.load_cert_chain(cert, key)
        return context


@dataclass(frozen=True)
class Credentials:
    server: str
    ssl: ssl.SSLContext | None
    # "Bearer <token>" for token auth, "" for client certificates
    authorization: str = ""
    #: loads them again from where they came from (None: they were given, not loaded)
    reload: Callable[[], Credentials] | None = field(default=None, compare=False, repr=False)


def _credentials(endpoint: Endpoint, reload: Callable[[], Credentials]) -> Credentials:
    return Credentials(endpoint.server, endpoint.ssl_context(), endpoint.authorization, reload)


def from_kubeconfig(path: str | Path, *, context: str | None = None) -> Credentials:
    endpoint = endpoint_from_kubeconfig(path, context=context)
    return _credentials(endpoint, functools.partial(from_kubeconfig, path, context=context))


def from_kubeconfig_dict(kubeconfig: Mapping[str, Any], *, context: str | None = None) -> Credentials:
    """Credentials from a kubeconfig held in memory (a provisioned cluster's, before any file)."""
    endpoint = endpoint_from_dict(kubeconfig, context=context)
    return _credentials(endpoint, functools.partial(from_kubeconfig_dict, kubeconfig, context=context))


def in_cluster() -> Credentials:
    return _credentials(endpoint_in_cluster(), in_cluster)


def load(kubeconfig: str | Path | None, *, context: str | None = None) -> Credentials:
    """A kubeconfig's credentials, or the pod's service account when ``kubeconfig`` is None."""
    return in_cluster() if kubeconfig is None else from_kubeconfig(kubeconfig, context=context)


def load_endpoint(kubeconfig: str | Path | None, *, context: str | None = None) -> Endpoint:
    if kubeconfig is None:
        return endpoint_in_cluster()
    return endpoint_from_kubeconfig(kubeconfig, context=context)


def endpoint_from_kubeconfig(path: str | Path, *, context: str | None = None) -> Endpoint:
    path = Path(path)
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise CredentialsError(f"kubeconfig {path} cannot be read: {exc}") from None
    # relative paths in a kubeconfig are relative to its folder, as kubectl reads them
    return endpoint_from_dict(loaded, context=context, folder=path.resolve().parent, origin=str(path))


def endpoint_from_dict(
    kubeconfig: Mapping[str, Any],
    *,
    context: str | None = None,
    folder: Path | None = None,
    origin: str = "the kubeconfig",
) -> Endpoint:
    if not isinstance(kubeconfig, Mapping):
        raise CredentialsError(f"{origin} is not a kubeconfig (a YAML mapping)")
    chosen = context or kubeconfig.get("current-context")
    if not chosen:
        raise CredentialsError(f"{origin} sets no current-context: pass a context")
    ctx = _named(kubeconfig, "contexts", str(chosen), origin).get("context") or {}
    cluster = _named(kubeconfig, "clusters", str(ctx.get("cluster") or ""), origin).get("cluster") or {}
    user_name = ctx.get("user")
    user = (_named(kubeconfig, "users", str(user_name), origin).get("user") or {}) if user_name else {}
    where = folder or Path.cwd()
    server = str(cluster.get("server") or "").rstrip("/")
    if not server:
        raise CredentialsError(
            f"{origin}: cluster {ctx.get('cluster')!r} has no server: set clusters[].cluster.server"
        )
    certificate, key = _client_pair(user, where, origin)
    authorization = _authorization(user, where, origin)
    if not authorization and not certificate and "exec" in user:
        certificate, key, authorization = _exec(user["exec"], where, origin)
    return Endpoint(
        server=server,
        ca=_pem(cluster, "certificate-authority", where),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        certificate=certificate,
        key=key,
        authorization=authorization,
    )


def endpoint_in_cluster(account: Path = SERVICE_ACCOUNT, env: Mapping[str, str] | None = None) -> Endpoint:
    """The pod's API server and ServiceAccount token, as a kubelet mounts and announces them."""
    env = os.environ if env is None else env
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise CredentialsError(
            "not in a pod (KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are unset): pass --kubeconfig"
        )
    try:
        token = (account / "token").read_text().strip()
        ca = (account / "ca.crt").read_bytes()
    except OSError as exc:
        raise CredentialsError(
            f"the pod's ServiceAccount token cannot be read ({exc}): set automountServiceAccountToken"
        ) from None
    return Endpoint(server=f"https://{_host(host)}:{port}", ca=ca, authorization=f"Bearer {token}")


def _host(host: str) -> str:
    try:
        return f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:
        return host


def _named(config: Mapping[str, Any], section: str, name: str, origin: str) -> dict[str, Any]:
    for entry in config.get(section) or []:
        if isinstance(entry, Mapping) and entry.get("name") == name:
            return dict(entry)
    known = ", ".join(str(e.get("name")) for e in config.get(section) or [] if isinstance(e, Mapping))
    raise CredentialsError(f"{origin}: no {section[:-1]} {name!r} in {section} (it has: {known or 'none'})")


def _file(value: str, folder: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else folder / path


def _pem(entry: Mapping[str, Any], key: str, folder: Path) -> bytes | None:
    """``key-data`` (base64) or the file ``key`` names."""
    if entry.get(f"{key}-data"):
        return base64.b64decode(entry[f"{key}-data"])
    if entry.get(key):
        return _file(str(entry[key]), folder).read_bytes()
    return None


def _client_pair(user: Mapping[str, Any], folder: Path, origin: str) -> tuple[bytes | None, bytes | None]:
    certificate, key = _pem(user, "client-certificate", folder), _pem(user, "client-key", folder)
    if bool(certificate) != bool(key):
        raise CredentialsError(
            f"{origin}: a client certificate needs its key: set both client-certificate and client-key"
        )
    return certificate, key


def _authorization(user: Mapping[str, Any], folder: Path, origin: str) -> str:
    if user.get("token"):
        return f"Bearer {user['token']}"
    if user.get("tokenFile"):
        return f"Bearer {_file(str(user['tokenFile']), folder).read_text().strip()}"
    if user.get("username") and user.get("password"):
        pair = f"{user['username']}:{user['password']}".encode()
        return f"Basic {base64.b64encode(pair).decode()}"
    if user.get("auth-provider"):
        raise CredentialsError(
            f"{origin}: auth-provider {user['auth-provider'].get('name')!r} is not supported: "
            "use an exec credential plugin"
        )
    return ""


def _exec(spec: Mapping[str, Any], folder: Path, origin: str) -> tuple[bytes | None, bytes | None, str]:
    """Run a client-go credential plugin (``users[].user.exec``) as kubectl does; its
    ``ExecCredential``'s token or client certificate."""
    command = str(spec.get("command") or "")
    if not command:
        raise CredentialsError(f"{origin}: users[].user.exec has no command")
    if os.sep in command and not os.path.isabs(command):
        command = str(folder / command)
    api_version = str(spec.get("apiVersion") or "client.authentication.k8s.io/v1")
    info = {"apiVersion": api_version, "kind": "ExecCredential", "spec": {"interactive": False}}
    env = {**os.environ, "KUBERNETES_EXEC_INFO": json.dumps(info)}
    env.update({str(e["name"]): str(e["value"]) for e in spec.get("env") or []})
    plugin = f"{origin}: the exec credential plugin {command}"
    try:
        done = subprocess.run(
            [command, *map(str, spec.get("args") or [])],
            env=env,
            capture_output=True,
            text=True,
            timeout=_EXEC_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CredentialsError(f"{plugin} did not run: {exc}") from None
    if done.returncode != 0:
        raise CredentialsError(f"{plugin} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    try:
        status = json.loads(done.stdout).get("status") or {}
    except (ValueError, AttributeError):
        raise CredentialsError(f"{plugin} printed no ExecCredential") from None
    if status.get("token"):
        return None, None, f"Bearer {status['token']}"
    if status.get("clientCertificateData") and status.get("clientKeyData"):
        return status["clientCertificateData"].encode(), status["clientKeyData"].encode(), ""
    raise CredentialsError(f"{plugin} gave neither a token nor a certificate")
