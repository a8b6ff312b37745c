"""Files that hold keys, passwords or tokens: private (0600) from the moment they exist."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: a TLS folder's files: the layout of a mounted Kubernetes TLS Secret (cert-manager adds ca.crt)
CA_FILE, CERT_FILE, KEY_FILE = "ca.crt", "tls.crt", "tls.key"


def write_private(path: Path, data: bytes | str) -> Path:
    """Write ``data`` to ``path``, readable by its owner alone, atomically.

    Written to a 0600 file beside it and renamed over it: no reader ever sees a half-written key,
    and no moment passes in which the file is readable by others (as write-then-chmod leaves).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode() if isinstance(data, str) else data
    staged = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing staged file of a crashed writer keeps its old mode otherwise
        with os.fdopen(fd, "wb") as out:
            fd = -1
            out.write(payload)
        os.replace(staged, path)
    finally:
        if fd >= 0:
            os.close(fd)
        staged.unlink(missing_ok=True)
    return path


#: In a TLS folder beside ``ca.crt``: the CAs the Kafka brokers' certificates are verified against,
#: when not the platform CA (a managed Kafka's own, which the platform does not issue).
KAFKA_CA_FILE = "kafka-ca.crt"


@dataclass(frozen=True, slots=True)
class TLSFiles:
    """What a TLS client or server is configured with: the CA bundle it trusts and its own pair.

    A server or a client authenticating with a certificate has ``cert`` and ``key``; a client that
    only verifies the server (and authenticates otherwise, with a token) has neither.
    """

    ca: Path
    cert: Path | None = None
    key: Path | None = None

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise ValueError("a TLS certificate needs its key, and a key its certificate")

    @property
    def has_identity(self) -> bool:
        return self.cert is not None

    def read(self) -> tuple[bytes, bytes | None, bytes | None]:
        """(CA bundle, certificate chain, key) as PEM bytes, read now: a renewed pair is picked up."""
        return (
            self.ca.read_bytes(),
            self.cert.read_bytes() if self.cert else None,
            self.key.read_bytes() if self.key else None,
        )

    def fingerprint(self) -> tuple[float, ...]:
        """Changes when any of the files is replaced: a renewal is noticed by comparing these."""
        paths = [p for p in (self.ca, self.cert, self.key) if p is not None]
        return tuple(p.stat().st_mtime_ns for p in paths)


class TLSFolderError(ValueError):
    """A TLS folder lacks what it must hold; the message names the files."""


def read_tls_folder(folder: Path, *, identity: bool) -> TLSFiles:
    """The files of a TLS folder (``--tls-dir``): ``ca.crt`` always, ``tls.crt`` and ``tls.key``
    together or not at all, and required when the process must present an ``identity``."""
    ca, cert, key = folder / CA_FILE, folder / CERT_FILE, folder / KEY_FILE
    if not ca.is_file():
        raise TLSFolderError(
            f"TLS folder {folder} has no {CA_FILE}: it holds the CA bundle (ca.crt), this process's "
            "certificate (tls.crt) and its key (tls.key)"
        )
    missing = [path.name for path in (cert, key) if not path.is_file()]
    if identity and missing:
        raise TLSFolderError(
            f"TLS folder {folder} lacks {', '.join(missing)}: it must hold the CA bundle (ca.crt), "
            "this process's certificate (tls.crt) and its key (tls.key)"
        )
    if len(missing) == 1:
        raise TLSFolderError(f"TLS folder {folder} has one of tls.crt and tls.key but not the other")
    return TLSFiles(ca=ca) if missing else TLSFiles(ca=ca, cert=cert, key=key)
