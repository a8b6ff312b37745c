"""A Redis server from the Debian package (Argo CD's cache), as a plain local process.

Its clients cross a process boundary over TCP, so Redis takes nothing but TLS (``--port 0``), and
both ends authenticate: the server with a certificate for 127.0.0.1/localhost, each client with a
certificate from the environment's CA (``tls-auth-clients yes``) *and* the password. The password is
generated per start and lives only in 0600 files: the config file ``redis-server`` reads it from
(never argv, which the environment's state.json records and ``ps`` shows) and ``credentials/auth``,
the layout Argo CD reads a mounted ``argocd-redis`` Secret in (``REDIS_CREDS_DIR_PATH``).
"""

from __future__ import annotations

import secrets
import shutil
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from localinfra import pki, ports, process
from localinfra.environment import Environment
from localinfra.errors import InfraError
from trust import files
from trust.identity import Identity

HOSTS = ("127.0.0.1", "localhost")
#: the folder below a Redis's working directory that holds its password as Argo CD reads it
CREDENTIALS_DIR = "credentials"


@dataclass(frozen=True)
class Redis:
    host: str
    port: int
    #: a folder holding ``auth`` (the password, 0600): Argo CD's ``REDIS_CREDS_DIR_PATH``
    credentials: Path
    #: the CA that issued the server's certificate and that client certificates must come from
    ca: Path

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def password(self) -> str:
        return (self.credentials / "auth").read_text().strip()


def command(*parts: str) -> bytes:
    """One command in RESP, Redis's wire format (an array of bulk strings)."""
    out = [f"*{len(parts)}\r\n".encode()]
    for part in parts:
        data = part.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def client_context(ca: Path, tls: files.TLSFiles | None) -> ssl.SSLContext:
    """A TLS client context that verifies the server against ``ca`` and presents ``tls``'s pair."""
    context = ssl.create_default_context(cafile=str(ca))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls is not None and tls.cert is not None and tls.key is not None:
        context.load_cert_chain(str(tls.cert), str(tls.key))
    return context


def ask(host: str, port: int, context: ssl.SSLContext, *commands: bytes, timeout: float = 2) -> bytes:
    """Send ``commands`` over TLS and return what came back once one reply line per command has
    arrived or the server closed the connection."""
    with (
        socket.create_connection((host, port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=host) as sock,
    ):
        sock.sendall(b"".join(commands))
        reply = b""
        while reply.count(b"\r\n") < len(commands):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
        return reply


def _ready(host: str, port: int, context: ssl.SSLContext, password: str) -> bool:
    return ask(host, port, context, command("AUTH", password), command("PING")) == b"+OK\r\n+PONG\r\n"


def start(env: Environment, name: str, identity: Identity, *, identities: Environment | None = None) -> Redis:
    """Start a Redis named ``name`` serving as ``identity`` (a service identity) over TLS alone, with
    a certificate of ``identities``'s CA (default ``env``'s), the CA its clients' must come from."""
    binary = shutil.which("redis-server")
    if not binary:
        raise InfraError("redis-server is not installed", fix="apt-get install -y redis-server")
    workdir = env.path(name)
    serving = pki.identity_files(identities or env, identity, hosts=HOSTS, server=True)
    assert serving.cert is not None and serving.key is not None
    password = secrets.token_urlsafe(32)  # [A-Za-z0-9_-]: nothing to quote in redis.conf
    credentials = workdir / CREDENTIALS_DIR
    credentials.mkdir(mode=0o700, exist_ok=True)
    credentials.chmod(0o700)  # mkdir leaves the mode of a folder that exists alone
    files.write_private(credentials / "auth", password)
    config = files.write_private(workdir / "redis.conf", f"requirepass {password}\n")
    port = ports.free_port()
    argv = [
        binary,
        str(config),  # first: the settings below are applied after the file's
        "--port",
        "0",
        "--tls-port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--protected-mode",
        "yes",
        "--tls-cert-file",
        str(serving.cert),
        "--tls-key-file",
        str(serving.key),
        "--tls-ca-cert-file",
        str(serving.ca),
        "--tls-auth-clients",
        "yes",
        "--tls-protocols",
        "TLSv1.2 TLSv1.3",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
    ]
    record = env.add_process(process.spawn(name, argv, workdir / "redis.log"))
    # The probe presents Redis's own certificate (it is a client one too), as a replica would.
    probe = client_context(serving.ca, serving)
    process.wait_until(
        record,
        lambda: _ready("127.0.0.1", port, probe, password),
        timeout=30,
        what="answering PING over TLS after AUTH",
    )
    env.set_endpoint(name, host="127.0.0.1", port=port, tls=True, ca=str(serving.ca))
    return Redis("127.0.0.1", port, credentials, serving.ca)
