"""The log scan that fails a run whose logs hold a credential.

Cases: a PEM private key, a JWT and a known password are each found; ordinary log lines, a
certificate (public) and short known values are not.
"""

from __future__ import annotations

from pathlib import Path

from tests import leaks

JWT = (
    "eyJhbGciOiJSUzI1NiIsImtpZCI6IngifQ.eyJpc3MiOiJrdWJlcm5ldGVzL3NlcnZpY2VhY2NvdW50In0.c2lnbmF0dXJlX2J5dGVz"
)


def test_each_kind_of_credential_is_found() -> None:
    assert leaks.leaks("key: -----BEGIN PRIVATE KEY-----\nMIGH") == ["a PEM private key"]
    assert leaks.leaks("-----BEGIN EC PRIVATE KEY-----") == ["a PEM private key"]
    assert leaks.leaks(f"Authorization: Bearer {JWT}") == ["a JWT bearer token"]
    assert leaks.leaks("dsn password=Zq8vN2kLp0", ["Zq8vN2kLp0"]) == ["the known secret Zq8…"]


def test_ordinary_lines_are_not_leaks() -> None:
    text = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\nserving on 127.0.0.1:8090 as eyJ"
    assert leaks.leaks(text, ["short", "8090"]) == []


def test_scan_names_each_leaking_log(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "server.log").write_text(f"token {JWT}\n")
    (tmp_path / "quiet.log").write_text("all good\n")
    (tmp_path / "data.txt").write_text("-----BEGIN PRIVATE KEY-----")  # not a log
    assert leaks.scan_logs(tmp_path) == {"a/server.log": ["a JWT bearer token"]}
