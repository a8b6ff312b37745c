"""The hops between Argo CD's own components are authenticated and encrypted, on the real processes.

Cases: Redis answers only a TLS client that presents a certificate from the environment's CA and
then the password (plain TCP, TLS without a certificate, a certificate of another CA, no password
and a wrong password are all refused); the repo-server's gRPC answers only a TLS client with a
certificate from the environment's CA (plaintext, no certificate, another CA's are refused), and
serves a certificate that verifies against that CA; the Redis password is in no process's argv,
environment or log, and its files are readable by their owner alone. That Argo CD still syncs
through these hops is ``test_argocd_smoke``.
"""

from __future__ import annotations

import socket
import ssl
import stat
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from localinfra import argocd, pki, redis
from localinfra.environment import Environment
from trust import authority, files
from trust.identity import Identity

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def argo(argocd_workers: list[argocd.ArgoCD]) -> argocd.ArgoCD:
    return argocd_workers[0]


@pytest.fixture(scope="module")
def trusted(infra_env: Environment) -> files.TLSFiles:
    """A client certificate from the environment's CA, of no Argo CD component."""
    return pki.identity_files(infra_env, Identity.service("argocd-transport-test"))


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory, trusted: files.TLSFiles) -> files.TLSFiles:
    """A well-formed client certificate of the same name from a CA the environment does not trust."""
    other = authority.CertificateAuthority.create()
    folder = tmp_path_factory.mktemp("stranger")
    issued = other.issue(Identity.service("argocd-transport-test")).write(folder, "tls", other.cert_pem)
    return files.TLSFiles(ca=trusted.ca, cert=issued.cert, key=issued.key)


def _refused(attempt: Callable[[], bytes]) -> bool:
    """Whether the server ended the connection without answering (a reset, a TLS alert, EOF)."""
    try:
        return attempt() == b""
    except (ssl.SSLError, OSError):
        return True


# --- Redis -------------------------------------------------------------------------------------


def _redis(argo: argocd.ArgoCD, tls: files.TLSFiles | None, *commands: bytes) -> bytes:
    context = redis.client_context(argo.redis.ca, tls)
    return redis.ask(argo.redis.host, argo.redis.port, context, *commands)


def test_redis_answers_a_client_with_certificate_and_password(
    argo: argocd.ArgoCD, trusted: files.TLSFiles
) -> None:
    auth = redis.command("AUTH", argo.redis.password())
    assert _redis(argo, trusted, auth, redis.command("PING")) == b"+OK\r\n+PONG\r\n"


def test_redis_refuses_plain_tcp(argo: argocd.ArgoCD) -> None:
    def plain() -> bytes:
        with socket.create_connection((argo.redis.host, argo.redis.port), timeout=2) as sock:
            sock.sendall(redis.command("AUTH", argo.redis.password()) + redis.command("PING"))
            return sock.recv(4096)

    assert _refused(plain)


def test_redis_refuses_tls_without_a_client_certificate(argo: argocd.ArgoCD) -> None:
    auth = redis.command("AUTH", argo.redis.password())
    assert _refused(lambda: _redis(argo, None, auth, redis.command("PING")))


def test_redis_refuses_a_certificate_of_another_ca(argo: argocd.ArgoCD, stranger: files.TLSFiles) -> None:
    auth = redis.command("AUTH", argo.redis.password())
    assert _refused(lambda: _redis(argo, stranger, auth, redis.command("PING")))


def test_redis_refuses_a_client_without_the_password(argo: argocd.ArgoCD, trusted: files.TLSFiles) -> None:
    reply = _redis(argo, trusted, redis.command("PING"), redis.command("GET", "anything"))
    assert reply.startswith(b"-NOAUTH"), reply
    assert b"+PONG" not in reply


def test_redis_refuses_a_wrong_password(argo: argocd.ArgoCD, trusted: files.TLSFiles) -> None:
    reply = _redis(argo, trusted, redis.command("AUTH", "not-the-password-at-all"), redis.command("PING"))
    assert reply.startswith(b"-WRONGPASS"), reply
    assert b"+PONG" not in reply


def test_redis_password_stays_in_private_files(infra_env: Environment, argo: argocd.ArgoCD) -> None:
    password = argo.redis.password()
    for secret_file in (argo.redis.credentials / "auth", argo.redis.credentials.parent / "redis.conf"):
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600, secret_file
    assert stat.S_IMODE(argo.redis.credentials.stat().st_mode) == 0o700
    assert password not in infra_env.state_file.read_text()
    for name in ("argocd-redis", "argocd-repo-server", "argocd-application-controller"):
        record = infra_env.processes[f"{argo.cluster}/{name}"]
        proc = Path(f"/proc/{record.pid}")
        assert password.encode() not in (proc / "cmdline").read_bytes(), name
        assert password.encode() not in (proc / "environ").read_bytes(), name
        assert password not in Path(record.log).read_text(errors="replace"), name


# --- the repo-server's gRPC --------------------------------------------------------------------


def _health(argo: argocd.ArgoCD, credentials: grpc.ChannelCredentials | None) -> int:
    channel = (
        grpc.secure_channel(argo.repo_server, credentials)
        if credentials is not None
        else grpc.insecure_channel(argo.repo_server)
    )
    with channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    return int(reply.status)


def _tls(argo: argocd.ArgoCD, client: files.TLSFiles | None) -> grpc.ChannelCredentials:
    ca, cert, key = (argo.repo_server_ca.read_bytes(), None, None)
    if client is not None:
        _, cert, key = client.read()
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)


def test_repo_server_answers_a_client_with_a_certificate_of_the_ca(
    argo: argocd.ArgoCD, trusted: files.TLSFiles
) -> None:
    # Also shows that the repo-server serves the environment's certificate, not a self-signed one.
    assert _health(argo, _tls(argo, trusted)) == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("client", ["none", "another CA"])
def test_repo_server_refuses_tls_without_a_trusted_client_certificate(
    argo: argocd.ArgoCD, stranger: files.TLSFiles, client: str
) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        _health(argo, _tls(argo, stranger if client == "another CA" else None))
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # the TLS handshake failed


def test_repo_server_refuses_plaintext(argo: argocd.ArgoCD) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        _health(argo, None)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
