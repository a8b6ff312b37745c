"""Upstream Maestro's server, run from a binary someone built, on a benchmark's PostgreSQL.

Upstream builds outside this project (see the benchmark docs); a benchmark given its binary runs
``maestro migration`` then ``maestro server --message-broker-type=grpc`` on a database of its own,
every port on a free one, its database settings in files (as upstream reads them), and registers
consumers through its REST API. Secure (the benchmark's default), it serves its gRPC source API
with TLS 1.3 and mutual TLS authentication (``--grpc-authn-type=mtls``: the client certificate must
chain to the platform CA), authorizes each call with a SubjectAccessReview
(``upstream_authorizer.py``) and serves its REST API over HTTPS, all with certificates from the
platform CA; otherwise its gRPC API is plaintext with its default mock authentication and no
authorization, as upstream runs by default.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psycopg

from localinfra import ports, postgres, process
from localinfra.environment import Environment
from localinfra.errors import InfraError
from trust.files import TLSFiles

START_TIMEOUT = 120.0


@dataclass(frozen=True)
class UpstreamServer:
    record: process.ProcessRecord
    #: its gRPC source API (host:port) and its REST API (a base URL)
    grpc: str
    rest: str
    mode: str
    #: how its clients check its certificate (None: plaintext)
    ssl: ssl.SSLContext | None = None


@dataclass(frozen=True)
class Secure:
    """What upstream's server runs secure with: its serving certificate (its CA also the CA its
    clients' certificates must chain to) and the kubeconfig its authorizer reviews calls with."""

    serving: TLSFiles
    authorizer_kubeconfig: Path

    def args(self) -> list[str]:
        cert, key = str(self.serving.cert), str(self.serving.key)
        return [
            f"--grpc-tls-cert-file={cert}",
            f"--grpc-tls-key-file={key}",
            "--grpc-authn-type=mtls",
            f"--grpc-client-ca-file={self.serving.ca}",
            f"--grpc-authorizer-config={self.authorizer_kubeconfig}",
            "--enable-https",
            f"--https-cert-file={cert}",
            f"--https-key-file={key}",
        ]

    def client_ssl(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.serving.ca))


_PLAINTEXT = "plaintext gRPC and REST, upstream's default mock authentication, no authorization"
_SECURE = (
    "gRPC over TLS 1.3 with mutual TLS (--grpc-authn-type=mtls), a SubjectAccessReview per call, "
    "REST over HTTPS"
)
_COMMON = "gRPC broker, log verbosity 1"


def _db_files(pg: postgres.Postgres, folder: Path) -> list[str]:
    """Upstream's ``--db-*-file`` options: a database and role of its own, in files it reads."""
    dsn = pg.create_database("upstream")
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    password = ""
    for line in Path(str(params["passfile"])).read_text().splitlines():
        fields = postgres.parse_passfile_line(line)
        if fields[2] in (str(params["dbname"]), "*") and fields[3] == str(params["user"]):
            password = fields[4]
            break
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    values = {
        "host": str(params["host"]),
        "port": str(params["port"]),
        "name": str(params["dbname"]),
        "user": str(params["user"]),
        "password": password,
    }
    args = []
    for key, value in values.items():
        path = folder / f"db.{key}"
        path.write_text(value)
        os.chmod(path, 0o600)
        args += [f"--db-{key}-file", str(path.resolve())]
    sslmode = str(params.get("sslmode") or "disable")
    args += ["--db-sslmode", sslmode]
    if params.get("sslrootcert"):
        args += ["--db-rootcert", str(Path(str(params["sslrootcert"])).resolve())]
    return args


def start(
    env: Environment,
    pg: postgres.Postgres,
    binary: Path,
    name: str,
    folder: Path,
    secure: Secure | None,
) -> UpstreamServer:
    """Migrate its schema, start it (secure, or plaintext when ``secure`` is None), wait until its
    REST API answers."""
    if not binary.is_file() or not os.access(binary, os.X_OK):
        raise InfraError(
            f"{binary} is not an executable file", fix="give the path of a built `maestro` binary"
        )
    db = _db_files(pg, folder / "secrets")
    migrated = subprocess.run(
        [str(binary), "migration", *db], capture_output=True, text=True, timeout=START_TIMEOUT, check=False
    )
    if migrated.returncode != 0:
        raise InfraError(
            f"`{binary} migration` failed (exit {migrated.returncode})",
            fix="check the binary and the database settings",
            log_tail=(migrated.stdout + migrated.stderr)[-3000:],
        )
    grpc_port, rest_port = ports.free_port(), ports.free_port()
    argv = [
        str(binary),
        "server",
        *db,
        "--message-broker-type=grpc",
        "--server-hostname=127.0.0.1",
        f"--http-server-bindport={rest_port}",
        f"--grpc-server-bindport={grpc_port}",
        f"--grpc-broker-bindport={ports.free_port()}",
        f"--metrics-server-bindport={ports.free_port()}",
        f"--health-check-server-bindport={ports.free_port()}",
        # its development environment (the default) logs at verbosity 10; production's level
        "--v=1",
        *(secure.args() if secure else []),
    ]
    record = env.add_process(process.spawn(name, argv, folder / f"{name}.log", cwd=folder))
    rest = f"{'https' if secure else 'http'}://127.0.0.1:{rest_port}"
    context = secure.client_ssl() if secure else None
    process.wait_until(record, lambda: _answers(rest, context), timeout=START_TIMEOUT, what="serving REST")
    mode = f"{_SECURE if secure else _PLAINTEXT}, {_COMMON}"
    return UpstreamServer(record, f"127.0.0.1:{grpc_port}", rest, mode, context)


def _answers(rest: str, context: ssl.SSLContext | None) -> bool:
    url = f"{rest}/api/maestro/v1/consumers?size=1"
    with urllib.request.urlopen(url, timeout=2, context=context) as reply:
        return bool(reply.status == 200)


async def create_consumer(server: UpstreamServer, name: str) -> None:
    """``POST /api/maestro/v1/consumers``, as upstream's tools register a cluster."""
    url = f"{server.rest}/api/maestro/v1/consumers"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json={"name": name}, ssl=server.ssl or True) as reply,
    ):
        if reply.status not in (200, 201, 409):
            raise InfraError(
                f"upstream refused consumer {name}: HTTP {reply.status}",
                fix="read its log",
                log_tail=(await reply.text())[-2000:],
            )
