"""How a client says who it is to Maestro, and how an operator names a certificate to revoke.

Cases: a TLS folder with or without its pair; credentials refused when they cannot work (no CA,
plaintext mixed with TLS, neither a pair nor a token), each refusal naming the option to use; a
token file is read again when it is replaced (projected tokens rotate); serials in decimal, 0x-hex,
openssl's colon form and bare hex with letters, and what is not a serial.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from maestro.api import errors, revocations
from maestro.wire import channels
from maestro.wire.channels import Credentials, CredentialsError


def _folder(tmp_path: Path, *names: str) -> Path:
    for name in names:
        (tmp_path / name).write_text("x")
    return tmp_path


def test_a_tls_folder_with_and_without_its_pair(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    full = channels.tls_files(_folder(tmp_path / "a", "ca.crt", "tls.crt", "tls.key"))
    assert full.has_identity and full.cert == tmp_path / "a" / "tls.crt"
    (tmp_path / "b").mkdir()
    ca_only = channels.tls_files(_folder(tmp_path / "b", "ca.crt"))
    assert not ca_only.has_identity
    (tmp_path / "c").mkdir()
    with pytest.raises(CredentialsError, match=r"no ca\.crt"):
        channels.tls_files(tmp_path / "c")
    (tmp_path / "d").mkdir()
    with pytest.raises(CredentialsError, match="not the other"):
        channels.tls_files(_folder(tmp_path / "d", "ca.crt", "tls.crt"))


def test_credentials_that_cannot_work_are_refused_naming_the_option(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="--tls-dir"):
        Credentials.from_options(None, None, False)
    with pytest.raises(CredentialsError, match="--insecure connects in plaintext"):
        Credentials.from_options(str(tmp_path), None, True)
    ca_only = _folder(tmp_path, "ca.crt")
    with pytest.raises(CredentialsError, match="--token-file"):
        Credentials.from_options(str(ca_only), None, False)
    token = tmp_path / "token"
    token.write_text("t")
    assert Credentials.from_options(str(ca_only), str(token), False).token_file == token
    assert Credentials.from_options(None, None, True).plaintext


def test_a_token_file_is_read_again_when_replaced(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    plugin = channels._TokenFromFile(token)
    sent: list[object] = []

    def callback(metadata: object, error: object) -> None:
        sent.append(metadata if error is None else error)

    plugin(None, callback)  # type: ignore[arg-type]
    replaced = tmp_path / "token.new"
    replaced.write_text("second")
    os.replace(replaced, token)
    plugin(None, callback)  # type: ignore[arg-type]
    assert sent == [(("authorization", "Bearer first"),), (("authorization", "Bearer second"),)]
    token.unlink()
    plugin(None, callback)  # type: ignore[arg-type]
    assert isinstance(sent[-1], OSError), "a missing token fails the call, it sends no stale one"


@pytest.mark.parametrize(
    ("text", "serial"),
    [("1234", 1234), ("0x4d2", 1234), ("0X4D2", 1234), ("04:D2", 1234), ("4d2", 1234), (" 99 ", 99)],
)
def test_a_serial_as_operators_copy_it(text: str, serial: int) -> None:
    assert revocations.parse_serial(text) == serial
    assert revocations.serial_text(serial) == format(serial, "x")


@pytest.mark.parametrize("text", ["", "0", "0x", "zz", "-5", "12:zz"])
def test_what_is_not_a_serial_is_refused(text: str) -> None:
    with pytest.raises(errors.InvalidArgument, match="serial"):
        revocations.parse_serial(text)
