"""Upstream Maestro's server, run from a binary someone built, on a benchmark's PostgreSQL.

Upstream builds outside this project (see the benchmark docs); a benchmark given its binary runs
``maestro migration`` then ``maestro server --message-broker-type=grpc`` on a database of its own,
every port on a free one, its database settings in files (as upstream reads them), and registers
consumers through its REST API. It serves its gRPC source API in plaintext with its default
(mock) authentication: upstream's own defaults.
"""

from __future__ import annotations

import os
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psycopg

from localinfra import ports, postgres, process
from localinfra.environment import Environment
from localinfra.errors import InfraError

START_TIMEOUT = 120.0


@dataclass(frozen=True)
class UpstreamServer:
    record: process.ProcessRecord
    #: its gRPC source API (host:port) and its REST API (a base URL)
    grpc: str
    rest: str
    mode: str = "plaintext gRPC, upstream's default mock authentication, gRPC broker, log verbosity 1"


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


def start(env: Environment, pg: postgres.Postgres, binary: Path, name: str, folder: Path) -> UpstreamServer:
    """Migrate its schema, start it, wait until its REST API answers."""
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
    ]
    record = env.add_process(process.spawn(name, argv, folder / f"{name}.log", cwd=folder))
    rest = f"http://127.0.0.1:{rest_port}"
    process.wait_until(record, lambda: _answers(rest), timeout=START_TIMEOUT, what="serving REST")
    return UpstreamServer(record, f"127.0.0.1:{grpc_port}", rest)


def _answers(rest: str) -> bool:
    with urllib.request.urlopen(f"{rest}/api/maestro/v1/consumers?size=1", timeout=2) as reply:
        return bool(reply.status == 200)


async def create_consumer(rest: str, name: str) -> None:
    """``POST /api/maestro/v1/consumers``, as upstream's tools register a cluster."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{rest}/api/maestro/v1/consumers", json={"name": name}) as reply,
    ):
        if reply.status not in (200, 201, 409):
            raise InfraError(
                f"upstream refused consumer {name}: HTTP {reply.status}",
                fix="read its log",
                log_tail=(await reply.text())[-2000:],
            )
