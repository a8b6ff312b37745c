"""The local PostgreSQL admits TLS with a SCRAM password, and nothing else.

Cases: a database's DSN connects over TLS, verify-full, as the database's own role (no superuser,
no password in the DSN); that DSN with ``sslmode=disable``, a wrong password, no password, or a
CA other than the environment's (of another name, or of its name and another key) is refused;
``localhost`` verifies too (the certificate names it); a role cannot connect to another role's
database; the server loaded only ``hostssl`` ``scram-sha-256`` rules, opens no Unix socket and
stores SCRAM verifiers; a password with ``:`` and ``\\`` written by ``passfile_line`` is read back
by libpq; a role's passfile holds its password alone; the passfiles and the server's key are 0600
(the key owned by the user the server runs as), and no password is in state.json, the server's
command line or its log.
"""

from __future__ import annotations

import datetime
import os
import pwd
import stat
from pathlib import Path

import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from localinfra import postgres
from localinfra.environment import Environment

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _no_password_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PGPASSWORD", "PGPASSFILE", "PGSSLMODE", "PGSSLROOTCERT"):
        monkeypatch.delenv(name, raising=False)


def refused(dsn: str, **overrides: str) -> str:
    with pytest.raises(psycopg.OperationalError) as err:
        psycopg.connect(dsn, connect_timeout=10, **overrides).close()
    return str(err.value)


def entries(passfile: Path) -> list[tuple[str, str, str, str, str]]:
    return [postgres.parse_passfile_line(line) for line in passfile.read_text().splitlines()]


def test_a_database_dsn_is_verified_tls_as_its_own_role(pg_dsn: str) -> None:
    params = conninfo_to_dict(pg_dsn)
    assert params["sslmode"] == "verify-full" and "password" not in params
    with psycopg.connect(pg_dsn) as conn:
        row = conn.execute(
            "SELECT s.ssl, s.version, r.rolname, r.rolsuper, r.rolcreatedb, r.rolcreaterole"
            " FROM pg_stat_ssl s, pg_roles r WHERE s.pid = pg_backend_pid() AND r.rolname = current_user"
        ).fetchone()
        owner = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
        ).fetchone()
    assert row == (True, "TLSv1.3", params["user"], False, False, False)
    assert owner == (params["dbname"],) and params["user"] == params["dbname"]


def test_without_tls_it_is_refused(pg_dsn: str) -> None:
    message = refused(pg_dsn, sslmode="disable")
    assert "no encryption" in message, message


def test_a_wrong_password_is_refused(pg_dsn: str) -> None:
    message = refused(pg_dsn, password="not-the-password")
    assert "password authentication failed" in message, message


def test_no_password_is_refused(pg_dsn: str, tmp_path: Path) -> None:
    empty = tmp_path / "passfile"
    empty.touch(mode=0o600)
    message = refused(pg_dsn, passfile=str(empty))
    assert "no password supplied" in message, message


def other_ca(folder: Path, subject: x509.Name) -> Path:
    """A CA certificate of a key of its own, with the subject ``subject``."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = folder / "other-ca.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


@pytest.mark.parametrize("impostor", [False, True], ids=["another-ca", "same-name-another-key"])
def test_a_server_the_ca_did_not_certify_is_refused(
    pg_server: postgres.Postgres, pg_dsn: str, tmp_path: Path, impostor: bool
) -> None:
    if impostor:  # the environment CA's very name: only the signature gives it away
        subject, why = x509.load_pem_x509_certificate(pg_server.ca.read_bytes()).subject, "signature failure"
    else:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "another-ca")])
        why = "certificate verify failed"
    message = refused(pg_dsn, sslrootcert=str(other_ca(tmp_path, subject)))
    assert "SSL error" in message and why in message, message


def test_localhost_is_a_name_of_the_server_too(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, host="localhost") as conn:
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)


def test_a_role_cannot_enter_another_roles_database(pg_server: postgres.Postgres, pg_dsn: str) -> None:
    other = conninfo_to_dict(pg_server.create_database(f"other_{os.getpid()}"))
    message = refused(pg_dsn, dbname=str(other["dbname"]))
    assert "permission denied for database" in message, message


def test_the_server_admits_only_tls_with_scram(pg_server: postgres.Postgres) -> None:
    with psycopg.connect(pg_server.dsn()) as conn:
        rules = conn.execute(
            "SELECT type, auth_method FROM pg_hba_file_rules WHERE error IS NULL ORDER BY line_number"
        ).fetchall()
        errors = conn.execute("SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL").fetchone()
        settings = {
            name: conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()[0]  # type: ignore[index]
            for name in ("ssl", "unix_socket_directories", "password_encryption", "listen_addresses")
        }
        verifiers = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolpassword IS NOT NULL").fetchall()
    assert errors == (0,)
    assert [rule for rule in rules if rule[1] != "reject"] == [("hostssl", "scram-sha-256")]
    assert settings == {
        "ssl": "on",
        "unix_socket_directories": "",
        "password_encryption": "scram-sha-256",
        "listen_addresses": "127.0.0.1",
    }
    assert verifiers and all(v.startswith("SCRAM-SHA-256$") for (v,) in verifiers)


def test_libpq_reads_an_escaped_password(pg_server: postgres.Postgres, tmp_path: Path) -> None:
    role, password = f"escaped_{os.getpid()}", "a:b\\c:\\"
    dsn = conninfo_to_dict(pg_server.create_database(role))
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
    passfile = tmp_path / "passfile"
    line = postgres.passfile_line(pg_server.host, pg_server.port, "*", role, password)
    passfile.write_text(line + "\n")
    passfile.chmod(0o600)
    with psycopg.connect(**{**dsn, "passfile": str(passfile)}) as conn:  # type: ignore[arg-type]
        assert conn.execute("SELECT current_user").fetchone() == (role,)


def test_secrets_stay_in_their_files(
    infra_env: Environment, pg_server: postgres.Postgres, pg_dsn: str
) -> None:
    role = str(conninfo_to_dict(pg_dsn)["user"])
    own = Path(str(conninfo_to_dict(pg_dsn)["passfile"]))
    assert own == pg_server.passfile_of(role) != pg_server.passfile
    # the role's passfile holds its password alone; the superuser's, the superuser's alone
    assert {entry[3] for entry in entries(own)} == {role}
    assert {entry[3] for entry in entries(pg_server.passfile)} == {"postgres"}
    for passfile in (pg_server.passfile, own):
        assert stat.S_IMODE(passfile.stat().st_mode) == 0o600
        assert stat.S_IMODE(passfile.parent.stat().st_mode) == 0o700
    key = infra_env.root / "postgres" / "tls" / "server.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    runs_as = postgres.service_user()
    assert key.stat().st_uid == (pwd.getpwnam(runs_as).pw_uid if runs_as else os.getuid())
    secrets = {entry[4] for p in pg_server.passfile.parent.rglob("passfile") for entry in entries(p)}
    assert len(secrets) >= 2  # the superuser's and at least this test's role's
    record = infra_env.processes["postgres"]
    cmdline = Path(f"/proc/{record.pid}/cmdline").read_text()
    exposed = {
        "state.json": infra_env.state_file.read_text(),
        "argv": cmdline,
        "log": Path(record.log).read_text(errors="replace"),
        "dsn": pg_dsn + pg_server.dsn(),
    }
    leaks = [(where, text) for where, text in exposed.items() for secret in secrets if secret in text]
    assert leaks == []
    assert not list((infra_env.root / "postgres").glob("*.pw"))  # initdb's password file is gone
