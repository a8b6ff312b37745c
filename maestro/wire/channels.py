"""How a client reaches a Maestro server: TLS with a certificate, TLS with a token, or plaintext.

Every client of the gRPC API (the source client, the agent's placement lookup, the CLI) opens its
channel here, so none of them can forget to secure it: plaintext needs ``Credentials.insecure()``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import grpc

from trust import files

# A process's identity folder: the layout of a mounted Kubernetes TLS Secret.


class CredentialsError(ValueError):
    """Credentials that cannot work; the message says what to give instead."""


@dataclasses.dataclass(frozen=True)
class Credentials:
    """What a client proves itself with.

    ``tls``: the CA that vouches for the server and, when it has a certificate, the client's own
    (mutual TLS: the server reads who the client is from it). ``token_file``: a Kubernetes token of
    the hub, read again whenever the file changes (projected tokens are rotated), sent as a bearer
    token over TLS. ``plaintext``: neither; only for a server started with ``--insecure``.
    """

    tls: files.TLSFiles | None = None
    token_file: Path | None = None
    plaintext: bool = False

    def __post_init__(self) -> None:
        if self.plaintext and (self.tls is not None or self.token_file is not None):
            raise CredentialsError("--insecure connects in plaintext: give it no TLS files and no token")
        if not self.plaintext and self.tls is None:
            raise CredentialsError(
                "connecting to Maestro needs the CA that issued its certificate: give --tls-dir "
                "(ca.crt, and tls.crt/tls.key to authenticate with a certificate), or --insecure "
                "for a server started with --insecure"
            )
        if self.tls is not None and not self.tls.has_identity and self.token_file is None:
            raise CredentialsError(
                f"{self.tls.ca.parent} holds no tls.crt/tls.key and no token was given: "
                "authenticate with a certificate (tls.crt, tls.key) or a token (--token-file)"
            )

    @classmethod
    def insecure(cls) -> Credentials:
        return cls(plaintext=True)

    @classmethod
    def from_folder(cls, folder: Path, token_file: Path | None = None) -> Credentials:
        """A process's identity folder (``ca.crt``, ``tls.crt``, ``tls.key``; the pair may be
        absent when a token authenticates), and optionally a token file."""
        return cls(tls=tls_files(folder), token_file=token_file)

    @classmethod
    def from_options(
        cls, tls_dir: str | Path | None, token_file: str | Path | None, insecure: bool
    ) -> Credentials:
        """What the ``--tls-dir``, ``--token-file`` and ``--insecure`` options of a command say."""
        if insecure:
            if tls_dir or token_file:
                raise CredentialsError("--insecure connects in plaintext: drop --tls-dir and --token-file")
            return cls.insecure()
        if not tls_dir:
            raise CredentialsError(
                "no credentials for Maestro: give --tls-dir (or FLEETPLANE_TLS_DIR), a folder with "
                "ca.crt and this process's tls.crt/tls.key, optionally --token-file instead of the "
                "pair; or --insecure for a server started with --insecure"
            )
        return cls.from_folder(Path(tls_dir), Path(token_file) if token_file else None)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        assert self.tls is not None
        ca, cert, key = self.tls.read()
        secure = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
        if self.token_file is None:
            return secure
        return grpc.composite_channel_credentials(
            secure, grpc.metadata_call_credentials(_TokenFromFile(self.token_file), name="token-file")
        )


def tls_files(folder: Path) -> files.TLSFiles:
    """``folder``'s ``ca.crt`` and, when both are there, ``tls.crt`` and ``tls.key``."""
    try:
        return files.read_tls_folder(folder, identity=False)
    except files.TLSFolderError as exc:
        raise CredentialsError(str(exc)) from None


class _TokenFromFile(grpc.AuthMetadataPlugin):
    """``authorization: Bearer <token>`` from a file, read again when the file changes."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._seen: tuple[int, int] | None = None
        self._token = ""

    def __call__(self, context: grpc.AuthMetadataContext, callback: grpc.AuthMetadataPluginCallback) -> None:
        try:
            stat = os.stat(self._path)
            if (stat.st_mtime_ns, stat.st_ino) != self._seen:
                self._token = self._path.read_text().strip()
                self._seen = (stat.st_mtime_ns, stat.st_ino)
        except OSError as exc:
            callback((), exc)
            return
        callback((("authorization", f"Bearer {self._token}"),), None)


#: what a client sends at most unless told: a bundle of the server's default limit and its envelope
SEND_LIMIT = 2 * 1024 * 1024
#: what a client takes at most: a page (the server bounds its bytes) or one bundle of any bundle
#: limit up to 32 MiB, with its status
RECEIVE_LIMIT = 64 * 1024 * 1024


def _options(message_limit: int, options: Sequence[tuple[str, object]]) -> list[tuple[str, object]]:
    # gRPC's own default takes 4 MiB: a lone bundle over it with its status would be refused.
    limits: list[tuple[str, object]] = [
        ("grpc.max_receive_message_length", RECEIVE_LIMIT),
        ("grpc.max_send_message_length", message_limit),
    ]
    given = {key for key, _ in options}
    return [*(item for item in limits if item[0] not in given), *options]


def aio_channel(
    address: str,
    credentials: Credentials,
    options: Sequence[tuple[str, object]] = (),
    *,
    message_limit: int = SEND_LIMIT,
) -> grpc.aio.Channel:
    """The channel every asyncio client of Maestro uses, with the message limits its answers need."""
    settings = _options(message_limit, options)
    if credentials.plaintext:
        return grpc.aio.insecure_channel(address, options=settings)
    return grpc.aio.secure_channel(address, credentials.channel_credentials(), options=settings)


def channel(
    address: str,
    credentials: Credentials,
    options: Sequence[tuple[str, object]] = (),
    *,
    message_limit: int = SEND_LIMIT,
) -> grpc.Channel:
    """A blocking channel, for probes and scripts outside an event loop."""
    settings = _options(message_limit, options)
    if credentials.plaintext:
        return grpc.insecure_channel(address, options=settings)
    return grpc.secure_channel(address, credentials.channel_credentials(), options=settings)
