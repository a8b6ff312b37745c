"""How local PostgreSQL clients get their password and check the server, without a server.

Cases: a password file line escapes ``:`` and ``\\`` with ``\\`` as libpq reads it, reads back to
the same fields (any text without a line break), keeps a leading ``#`` from making it a comment,
and refuses a line break; setting a user's password replaces that user's lines only, in a file of
mode 0600; a DSN names the passfile and the CA with verify-full, holds no password, and keeps paths
with spaces, ``&``, ``?``, ``%`` or ``#`` intact; a role's DSN names a passfile of its own, not the
superuser's; a database of its own is refused a name that is not a plain identifier, or the
superuser's.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict

from localinfra import postgres


@pytest.fixture
def open_umask() -> Iterator[None]:
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_colons_and_backslashes_are_escaped() -> None:
    line = postgres.passfile_line("127.0.0.1", 5432, "*", "maestro", "a:b\\c")
    assert line == "127.0.0.1:5432:*:maestro:a\\:b\\\\c"
    assert postgres.passfile_line("::1", "5432", "db:1", "u\\v", "pw") == "\\:\\:1:5432:db\\:1:u\\\\v:pw"


FIELD = st.text(st.characters(blacklist_characters="\n\r\0", blacklist_categories=("Cs",)))


@given(FIELD, st.integers(1, 65535), FIELD, FIELD, FIELD)
def test_a_line_reads_back_to_its_fields(
    host: str, port: int, database: str, user: str, password: str
) -> None:
    line = postgres.passfile_line(host, port, database, user, password)
    assert "\n" not in line
    assert postgres.parse_passfile_line(line) == (host, str(port), database, user, password)


def test_a_host_starting_with_a_hash_is_not_a_comment() -> None:
    line = postgres.passfile_line("#host", 1, "*", "u", "p")
    assert not line.startswith("#")
    assert postgres.parse_passfile_line(line)[0] == "#host"


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\0b"])
def test_a_line_break_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        postgres.passfile_line("127.0.0.1", 5432, "*", "maestro", bad)


def test_setting_a_password_replaces_that_users_lines_only(tmp_path: Path, open_umask: None) -> None:
    passfile = tmp_path / "passfile"
    with postgres._locked(passfile):
        postgres._set_password(passfile, 5432, "postgres", "one:1")
        postgres._set_password(passfile, 5432, "maestro", "two")
        postgres._set_password(passfile, 5432, "postgres", "three")
    entries = [postgres.parse_passfile_line(line) for line in passfile.read_text().splitlines()]
    assert sorted(entries) == sorted(
        [(host, "5432", "*", user, pw) for host in ("127.0.0.1", "localhost") for user, pw in
         [("postgres", "three"), ("maestro", "two")]]
    )  # fmt: skip
    assert mode(passfile) == 0o600


def test_a_dsn_names_the_passfile_and_the_ca_and_holds_no_password() -> None:
    odd = Path("/tmp/a dir&x=1?y#z%41")
    pg = postgres.Postgres("127.0.0.1", 6543, odd / "passfile", odd / "ca.crt")
    assert conninfo_to_dict(pg.dsn("maestro", user="maestro")) == {
        "host": "127.0.0.1",
        "port": "6543",
        "dbname": "maestro",
        "user": "maestro",
        "sslmode": "verify-full",
        "sslrootcert": str(odd / "ca.crt"),
        "passfile": str(odd / "maestro" / "passfile"),  # the role's own, not the superuser's
    }
    admin = conninfo_to_dict(pg.dsn())
    assert (admin["user"], admin["dbname"], admin["passfile"]) == (
        "postgres",
        "postgres",
        str(odd / "passfile"),
    )


@pytest.mark.parametrize("name", ["postgres", "../x", "a/b", "Upper", "", "x" * 64])
def test_a_database_of_its_own_needs_a_plain_name_not_the_superusers(tmp_path: Path, name: str) -> None:
    pg = postgres.Postgres("127.0.0.1", 1, tmp_path / "passfile", tmp_path / "ca.crt")
    with pytest.raises(ValueError):
        pg.create_database(name)


def test_hba_admits_only_tls_with_scram() -> None:
    rules = [line.split() for line in postgres.HBA.splitlines() if line and not line.startswith("#")]
    admitting = [rule for rule in rules if rule[-1] != "reject"]
    assert admitting == [["hostssl", "all", "all", "127.0.0.1/32", "scram-sha-256"]]
    assert not any(rule[-1] in ("trust", "password", "md5", "peer", "ident") for rule in rules)
