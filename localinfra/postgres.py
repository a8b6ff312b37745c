"""A PostgreSQL server from the Debian package, run as a plain local process.

Every connection is TLS and a SCRAM-SHA-256 password; nothing is trusted:

- the server's certificate is issued by the environment's CA (``pki.ensure_ca(env.path("pki"))``,
  the one the local clusters use) for 127.0.0.1 and localhost, and clients verify it
  (``sslmode=verify-full``); its key, ``<env>/<name>/tls/server.key``, is mode 0600 and owned by the
  user the server runs as;
- ``pg_hba.conf`` (``HBA``) admits ``hostssl`` with ``scram-sha-256`` only and rejects the rest;
  the server opens no Unix socket;
- passwords are generated here and written only to libpq password files (0600, in 0700 folders,
  owned by whoever started the server), which DSNs name with ``passfile=``: no DSN, argv,
  state.json or log holds a password. The superuser's is ``<env>/<name>-client/passfile``;
- ``create_database`` gives each database a login role of its own, its owner and the only role
  but the superuser allowed to connect to it, and returns that role's DSN, whose passfile,
  ``<env>/<name>-client/<role>/passfile``, holds that role's password alone: a service never
  runs as the superuser, whose DSN (``Postgres.dsn()``) is kept for administration.

A DSN looks like ``postgresql://maestro@127.0.0.1:PORT/maestro?sslmode=verify-full&sslrootcert=
<env>/pki/ca.crt&passfile=<env>/postgres-client/maestro/passfile``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import re
import secrets
import shutil
import subprocess
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from localinfra import build, pki, ports, process
from localinfra.environment import Environment
from localinfra.errors import InfraError
from trust import files

# PostgreSQL refuses to run as root; when we are root it runs as this system user.
SERVICE_USER = "fleetplane"
SUPERUSER = "postgres"
HOST = "127.0.0.1"
#: the names the server's certificate is valid for, and the hosts the passfile has lines for
SERVER_NAMES = (HOST, "localhost")
#: a database and its role: a plain lower-case identifier (it also names the role's passfile folder)
ROLE_NAME = r"[a-z_][a-z0-9_]{0,62}"

# No `local` line admits anyone: the server opens no Unix socket (unix_socket_directories is empty
# in `start`), since every client here connects over TCP and a socket would be a second way in to
# keep secure; the `reject` keeps it shut should a socket ever be turned on. Only TLS connections
# from the loopback address the server listens on, with a SCRAM password, get past this file.
HBA = """\
# Written by fleetplane (localinfra/postgres.py): TLS and a SCRAM-SHA-256 password, or nothing.
# TYPE     DATABASE  USER  ADDRESS       METHOD
local      all       all                 reject
hostssl    all       all   127.0.0.1/32  scram-sha-256
hostnossl  all       all   all           reject
host       all       all   all           reject
"""

# Serialises read-modify-write of passfiles between threads; an flock does it between processes.
_passfile_lock = threading.Lock()


def new_password() -> str:
    """256 random bits, in characters that need no escaping anywhere."""
    return secrets.token_urlsafe(32)


def _escape(field: str) -> str:
    if any(c in field for c in "\n\r\0"):
        raise ValueError("a password file field cannot hold a line break or NUL")
    return field.replace("\\", "\\\\").replace(":", "\\:")


def passfile_line(host: str, port: int | str, database: str, user: str, password: str) -> str:
    """One line of a libpq password file (``host:port:database:user:password``), ``:`` and ``\\``
    escaped with ``\\`` as libpq requires; a field of just ``*`` matches anything."""
    line = ":".join(_escape(str(f)) for f in (host, port, database, user, password))
    # libpq skips a line that starts with '#' as a comment; escaped, it is a literal '#'.
    return "\\" + line if line.startswith("#") else line


def parse_passfile_line(line: str) -> tuple[str, str, str, str, str]:
    """The five fields of ``passfile_line``'s output, unescaped."""
    fields: list[str] = []
    current: list[str] = []
    chars = iter(line.rstrip("\n"))
    for c in chars:
        if c == "\\":
            current.append(next(chars, ""))
        elif c == ":" and len(fields) < 4:
            fields.append("".join(current))
            current = []
        else:
            current.append(c)
    fields.append("".join(current))
    if len(fields) != 5:
        raise ValueError("not a password file line: expected host:port:database:user:password")
    return fields[0], fields[1], fields[2], fields[3], fields[4]


def passfile_text(entries: Iterable[tuple[str, str, str, str, str]]) -> str:
    return "".join(passfile_line(*entry) + "\n" for entry in entries)


@contextlib.contextmanager
def _locked(passfile: Path) -> Iterator[None]:
    with _passfile_lock, open(passfile.with_name(".passfile.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _set_password(passfile: Path, port: int, user: str, password: str) -> None:
    """``user``'s password for every database of the server on ``port``, one line per name the
    server answers to; other users' lines are kept. Call with ``_locked`` held."""
    kept = []
    if passfile.exists():
        for line in passfile.read_text().splitlines():
            entry = parse_passfile_line(line)
            if not (entry[1] == str(port) and entry[3] == user):
                kept.append(entry)
    fresh = [(host, str(port), "*", user, password) for host in SERVER_NAMES]
    files.write_private(passfile, passfile_text(fresh + kept))


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    #: the libpq password file of the superuser; each role's is in a folder beside it
    passfile: Path
    #: the CA the server's certificate is verified against
    ca: Path
    user: str = SUPERUSER

    def passfile_of(self, user: str) -> Path:
        return self.passfile if user == self.user else self.passfile.parent / user / "passfile"

    def dsn(self, dbname: str = "postgres", *, user: str | None = None) -> str:
        """A DSN for ``user`` (default: the superuser) on ``dbname``: TLS with the server's name and
        certificate verified against the CA, the password read from that user's passfile."""
        who = user or self.user
        query = urlencode(
            {"sslmode": "verify-full", "sslrootcert": str(self.ca), "passfile": str(self.passfile_of(who))},
            quote_via=quote,
            safe="/",
        )
        return f"postgresql://{quote(who, safe='')}@{self.host}:{self.port}/{quote(dbname, safe='')}?{query}"

    def create_database(self, name: str) -> str:
        """Database ``name`` (made if missing), owned by a login role also called ``name``, with no
        other privilege and a new password in a passfile of its own; returns that role's DSN.

        Only the role (and the superuser) may connect to the database. Asked again, the role gets
        a new password and the same DSN."""
        if name == self.user:
            raise ValueError(f"{name!r} is the superuser: a database of its own needs another name")
        if not re.fullmatch(ROLE_NAME, name):
            raise ValueError(f"{name!r}: a database of its own is named like {ROLE_NAME}")
        password = new_password()
        with _locked(self.passfile), psycopg.connect(self.dsn(), autocommit=True) as conn:
            # Hashed here (libpq's PQencryptPasswordConn): the server, and its log should the
            # statement fail, only ever see the SCRAM verifier, never the password.
            verifier = conn.pgconn.encrypt_password(password.encode(), name.encode(), b"scram-sha-256")
            role = sql.Identifier(name)
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
            conn.execute(
                sql.SQL(
                    "{} ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS "
                    "PASSWORD {}"
                ).format(sql.SQL("ALTER" if exists else "CREATE"), role, sql.Literal(verifier.decode()))
            )
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(role, role))
            else:
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(role, role))
            # PUBLIC may connect to any new database by default: not to this one.
            conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(role))
            folder = self.passfile_of(name).parent
            folder.mkdir(mode=0o700, exist_ok=True)
            _set_password(self.passfile_of(name), self.port, name, password)
        return self.dsn(name, user=name)

    @classmethod
    def from_env(cls, env: Environment, name: str = "postgres") -> Postgres:
        ep = env.endpoint(name)
        params = conninfo_to_dict(ep["dsn"])
        if "passfile" not in params or "sslrootcert" not in params:
            raise InfraError(
                f"`{name}` in {env.root} was started without TLS and passwords",
                fix="run `fleetplane local down`, then `up`",
            )
        passfile, ca = Path(str(params["passfile"])), Path(str(params["sslrootcert"]))
        return cls(ep["host"], int(ep["port"]), passfile, ca)


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


def _write_private(path: Path, text: str, user: str | None) -> None:
    """``text`` in a file that is 0600 from its first byte, then handed to ``user`` (None: kept)."""
    files.write_private(path, text)
    if user:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def _chown_tree(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for p in [path, *path.rglob("*")]:
        os.chown(p, entry.pw_uid, entry.pw_gid)


def start(env: Environment, name: str = "postgres", *, durable: bool = True) -> Postgres:
    bindir = build.postgres_bin_dir()
    if bindir is None:
        raise InfraError("PostgreSQL is not installed", fix="apt-get install -y postgresql")
    user = service_user()
    folder = env.root / name
    data = folder / "data"
    if data.exists():
        shutil.rmtree(data)
    data.mkdir(parents=True)
    ca = pki.ensure_ca(env.path("pki"))
    tls = pki.issue(ca, folder / "tls", "server", cn=f"fleetplane-{name}", hosts=SERVER_NAMES, server=True)
    if user:
        # The server's key must be its own (PostgreSQL refuses a key others may read): 0600 and
        # owned by the user it runs as, like everything it writes.
        _chown_tree(folder, user)
        # The user must be able to walk down to its folder.
        for parent in [env.root, *env.root.parents]:
            if parent == Path("/"):
                break
            os.chmod(parent, os.stat(parent).st_mode | 0o011)
    log = folder / "postgres.log"
    # The superuser's password reaches initdb in a file, private from its first byte, never in argv.
    password = new_password()
    pwfile = folder / "superuser.pw"
    try:
        _write_private(pwfile, password + "\n", user)
        init = subprocess.run(
            process.as_user(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    SUPERUSER,
                    "--auth=scram-sha-256",
                    f"--pwfile={pwfile}",
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
    finally:
        pwfile.unlink(missing_ok=True)
    if init.returncode != 0:
        output = (init.stdout + init.stderr)[-2000:]
        raise InfraError(
            f"initdb failed (exit {init.returncode})", fix=f"check that {data} is writable", log_tail=output
        )
    _write_private(data / "pg_hba.conf", HBA, user)
    client = env.root / f"{name}-client"
    shutil.rmtree(client, ignore_errors=True)  # a previous server's passwords
    client.mkdir(mode=0o700)
    port = ports.free_port()
    pg = Postgres(HOST, port, client / "passfile", ca.cert)
    with _locked(pg.passfile):
        _set_password(pg.passfile, port, SUPERUSER, password)
    argv = [
        str(bindir / "postgres"),
        "-D",
        str(data),
        "-p",
        str(port),
        "-c",
        f"listen_addresses={HOST}",
        "-c",
        "unix_socket_directories=",
        "-c",
        "ssl=on",
        "-c",
        f"ssl_cert_file={tls.cert}",
        "-c",
        f"ssl_key_file={tls.key}",
        "-c",
        "ssl_min_protocol_version=TLSv1.3",
        "-c",
        "password_encryption=scram-sha-256",
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
    _wait_ready(record, pg, timeout=60)
    env.set_endpoint(name, host=pg.host, port=port, dsn=pg.dsn())
    return pg


def _wait_ready(record: process.ProcessRecord, pg: Postgres, *, timeout: float) -> None:
    def ready() -> bool:
        with psycopg.connect(pg.dsn(), connect_timeout=2) as conn:
            conn.execute("SELECT 1")
        return True

    process.wait_until(record, ready, timeout=timeout, what="accepting connections")


def restart(env: Environment, name: str = "postgres", *, timeout: float = 120) -> Postgres:
    """Start a server ``start`` made again on its data, port, certificates and passwords, as after
    a crash: it replays its write-ahead log before it accepts connections. A server still running
    is stopped first. A postmaster killed -9 leaves its backends to notice and exit, and a new one
    refuses to start beside them: they are waited for."""
    old = env.processes.get(name)
    if old is None:
        raise InfraError(f"no {name} recorded in {env.root}", fix="start it with postgres.start first")
    if process.is_alive(old):
        process.stop(old)
    process.wait_session_gone(old, timeout=30)
    pg = Postgres.from_env(env, name)
    log = env.root / name / "postgres.log"
    record = env.add_process(process.spawn(name, old.argv, log, user=service_user()))
    _wait_ready(record, pg, timeout=timeout)
    return pg
