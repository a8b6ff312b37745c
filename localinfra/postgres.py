"""A PostgreSQL server from the Debian package, run as a plain local process."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg

from localinfra import build, ports, process
from localinfra.environment import Environment
from localinfra.errors import InfraError

# PostgreSQL refuses to run as root; when we are root it runs as this system user.
SERVICE_USER = "fleetplane"


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    user: str = "postgres"

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
        return self.dsn(name)

    @classmethod
    def from_env(cls, env: Environment, name: str = "postgres") -> Postgres:
        ep = env.endpoint(name)
        return cls(host=ep["host"], port=int(ep["port"]))


def service_user() -> str | None:
    """The user to run data services as: ourselves, or a system user when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
            check=True,
            capture_output=True,
        )
    return SERVICE_USER


def _chown_tree(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for p in [path, *path.rglob("*")]:
        os.chown(p, entry.pw_uid, entry.pw_gid)


def start(env: Environment, name: str = "postgres", *, durable: bool = True) -> Postgres:
    bindir = build.postgres_bin_dir()
    if bindir is None:
        raise InfraError("PostgreSQL is not installed", fix="apt-get install -y postgresql")
    user = service_user()
    data = env.root / name / "data"
    sockets = env.path(name, "run")
    if data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True)
    if user:
        _chown_tree(env.root / name, user)
        # The user must be able to walk down to its folder.
        for parent in [env.root, *env.root.parents]:
            if parent == Path("/"):
                break
            os.chmod(parent, os.stat(parent).st_mode | 0o011)
    log = env.root / name / "postgres.log"
    init = subprocess.run(
        process.as_user(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
            user,
        ),
        capture_output=True,
        text=True,
        check=False,
    )
    if init.returncode != 0:
        output = (init.stdout + init.stderr)[-2000:]
        raise InfraError(
            f"initdb failed (exit {init.returncode})", fix=f"check that {data} is writable", log_tail=output
        )
    port = ports.free_port()
    argv = [
        str(bindir / "postgres"),
        "-D",
        str(data),
        "-p",
        str(port),
        "-k",
        str(sockets),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "max_connections=300",
        "-c",
        "shared_buffers=256MB",
        "-c",
        "log_min_messages=warning",
    ]
    if not durable:
        # Test and benchmark databases are thrown away: skip the fsyncs the machine would wait on.
        argv += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
    record = env.add_process(process.spawn(name, argv, log, user=user))
    pg = Postgres("127.0.0.1", port)

    def ready() -> bool:
        with psycopg.connect(pg.dsn(), connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True

    process.wait_until(record, ready, timeout=60, what="accepting connections")
    env.set_endpoint(name, host=pg.host, port=port, dsn=pg.dsn())
    return pg
