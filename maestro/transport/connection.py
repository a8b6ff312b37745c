"""How a process connects to Kafka: the brokers, and who it is to them.

Secure unless told otherwise: a process connects over TLS with the certificate of its identity (a
``--tls-dir`` folder holding ``ca.crt``, ``tls.crt`` and ``tls.key``, a Kubernetes TLS Secret's
layout), verifies the broker's certificate and host name (against ``kafka-ca.crt`` when the folder
holds one, for brokers whose certificates another CA signs, as Amazon MSK's are; else ``ca.crt``),
and is known to Kafka's authorizer by the principal its certificate's subject maps to (or by the
whole subject, where the brokers cannot map it: ``--kafka-principals subject``). Plaintext,
with no identity at all, is only ever an explicit choice (``--insecure``), and says so in the log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from trust import files
from trust.identity import Identity, IdentityError, Kind, PrincipalForm

log = logging.getLogger(__name__)

KAFKA_CA_FILE = files.KAFKA_CA_FILE


class KafkaSettingsError(ValueError):
    """The Kafka connection settings are incomplete or contradict each other; the message says how."""


def tls_dir_files(folder: Path) -> files.TLSFiles:
    """The identity files of a TLS folder, each checked to exist: Kafka requires the pair."""
    try:
        return files.read_tls_folder(folder, identity=True)
    except files.TLSFolderError as exc:
        raise KafkaSettingsError(str(exc)) from None


def broker_ca(tls: files.TLSFiles) -> Path:
    """The CAs the brokers are verified against: ``kafka-ca.crt`` beside ``ca.crt``, else ``ca.crt``."""
    brokers = tls.ca.parent / KAFKA_CA_FILE
    return brokers if brokers.is_file() else tls.ca


def identity_of(cert_pem: bytes) -> Identity | None:
    """The fleetplane identity a certificate's subject names, read as Kafka reads it (subject, not
    SPIFFE ID: the principal comes from the subject); None for another kind of subject."""
    subject = x509.load_pem_x509_certificate(cert_pem).subject

    def one(oid: x509.ObjectIdentifier) -> str | None:
        values = subject.get_attributes_for_oid(oid)
        return str(values[0].value) if values else None

    kind, name = one(NameOID.ORGANIZATIONAL_UNIT_NAME), one(NameOID.COMMON_NAME)
    try:
        return Identity(Kind(kind or ""), name or "", one(NameOID.USER_ID))
    except (ValueError, IdentityError):
        return None


@dataclass(frozen=True)
class KafkaSettings:
    """The brokers (``bootstrap``) and this process's identity files; ``tls`` None is plaintext.
    ``principals``: how the brokers name a client by its certificate (what ACLs must say)."""

    bootstrap: str
    tls: files.TLSFiles | None = None
    principals: PrincipalForm = PrincipalForm.MAPPED

    def __post_init__(self) -> None:
        if not self.bootstrap:
            raise KafkaSettingsError("no Kafka bootstrap servers given (--kafka)")
        if self.tls is not None and not self.tls.has_identity:
            raise KafkaSettingsError(
                "Kafka requires a client certificate: the TLS files need tls.crt and tls.key"
            )

    @classmethod
    def secure(
        cls, bootstrap: str, tls: files.TLSFiles, principals: PrincipalForm = PrincipalForm.MAPPED
    ) -> KafkaSettings:
        return cls(bootstrap, tls, principals)

    @classmethod
    def insecure(cls, bootstrap: str) -> KafkaSettings:
        return cls(bootstrap, None)

    @classmethod
    def from_flags(
        cls,
        bootstrap: str,
        tls_dir: Path | str | None,
        insecure: bool,
        principals: PrincipalForm = PrincipalForm.MAPPED,
    ) -> KafkaSettings:
        """What ``--kafka``, ``--tls-dir``, ``--insecure`` (exactly one of these two) and
        ``--kafka-principals`` ask for."""
        if insecure and tls_dir:
            raise KafkaSettingsError("--tls-dir and --insecure exclude each other: give one")
        if insecure:
            log.warning(
                "Kafka at %s over plaintext with no client certificate (--insecure): anyone who can "
                "reach the broker can read and write what this process does",
                bootstrap,
            )
            return cls.insecure(bootstrap)
        if not tls_dir:
            raise KafkaSettingsError(
                "no identity for Kafka: give --tls-dir DIR (or FLEETPLANE_TLS_DIR) holding ca.crt, "
                "tls.crt and tls.key, or --insecure to connect over plaintext"
            )
        return cls.secure(bootstrap, tls_dir_files(Path(tls_dir)), principals)

    @property
    def is_secure(self) -> bool:
        return self.tls is not None

    def identity(self) -> Identity | None:
        """Who the certificate says this process is (None when plaintext or not a fleetplane one)."""
        if self.tls is None or self.tls.cert is None:
            return None
        return identity_of(self.tls.cert.read_bytes())

    @property
    def principal(self) -> str:
        """The principal Kafka's authorizer sees, for messages (``User:ANONYMOUS`` over plaintext)."""
        if self.tls is None:
            return "User:ANONYMOUS"
        who = self.identity()
        if who is None:
            return f"the subject of {self.tls.cert}"
        return who.kafka_principal_as(self.principals)

    def client_config(self) -> dict[str, Any]:
        """librdkafka settings for these brokers and this identity."""
        config: dict[str, Any] = {"bootstrap.servers": self.bootstrap}
        if self.tls is not None:
            config |= {
                "security.protocol": "SSL",
                "ssl.ca.location": str(broker_ca(self.tls)),
                "ssl.certificate.location": str(self.tls.cert),
                "ssl.key.location": str(self.tls.key),
                # librdkafka's default since 2.0; stated so no override can turn it off unseen
                "ssl.endpoint.identification.algorithm": "https",
            }
        return config
