"""A certificate authority that issues fleetplane identities.

The platform's CA lives on the hub (a folder here, a Secret on a real hub); a user may bring their
own CA pair instead. Every certificate it issues carries the identity's subject and SPIFFE ID
(``trust.identity``), a random serial (what revocation names) and a bounded lifetime.
"""

from __future__ import annotations

import datetime
import fcntl
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from trust import files
from trust.identity import DEFAULT_TRUST_DOMAIN, ORGANIZATION, Identity, validate_trust_domain

#: in a CA's folder beside ``ca.crt`` and ``ca.key``, for a subordinate CA: the CAs above it up to
#: the root, its issuer first
CHAIN_FILE = "chain.crt"
DEFAULT_LIFETIME = datetime.timedelta(days=30)
CA_LIFETIME = datetime.timedelta(days=3650)
# Clocks of the machines involved may lag the issuer's a little.
_BACKDATE = datetime.timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate and its private key, PEM; ``serial`` is what a revocation names."""

    cert_pem: bytes
    key_pem: bytes
    serial: int
    not_after: datetime.datetime

    def write(self, folder: Path, stem: str, ca_pem: bytes) -> files.TLSFiles:
        """``<stem>.crt``, ``<stem>.key`` (0600) and the CA that issued them, ``ca.crt``, in
        ``folder``: what a process is configured with."""
        key = files.write_private(folder / f"{stem}.key", self.key_pem)
        cert = folder / f"{stem}.crt"
        cert.write_bytes(self.cert_pem)
        ca = folder / "ca.crt"
        ca.write_bytes(ca_pem)
        return files.TLSFiles(ca=ca, cert=cert, key=key)


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=ca,
        crl_sign=ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


class CertificateAuthority:
    def __init__(
        self,
        cert: x509.Certificate,
        key: ec.EllipticCurvePrivateKey,
        trust_domain: str = DEFAULT_TRUST_DOMAIN,
        chain_pem: bytes = b"",
    ) -> None:
        """``chain_pem``: for a subordinate CA, the CAs above it up to the root, issuer first."""
        self.cert = cert
        self._key = key
        self.trust_domain = validate_trust_domain(trust_domain)
        self.chain_pem = chain_pem

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def bundle_pem(self) -> bytes:
        """What a peer of an issued certificate trusts: this CA and the CAs above it, so that its
        verification ends at a self-signed root as TLS libraries require."""
        return self.cert_pem + self.chain_pem

    @property
    def intermediates_pem(self) -> bytes:
        """What follows a leaf in its certificate file: this CA when it is a subordinate (a peer
        that trusts only the root, as Amazon MSK does, then finds the path), else nothing."""
        return self.cert_pem if self.chain_pem else b""

    @classmethod
    def load(
        cls, cert: Path, key: Path, trust_domain: str = DEFAULT_TRUST_DOMAIN, chain: Path | None = None
    ) -> CertificateAuthority:
        """A CA from PEM files (the platform's own, or one the user brings); ``chain``, for a
        subordinate CA, the CAs above it up to the root, its issuer first."""
        loaded = serialization.load_pem_private_key(key.read_bytes(), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key}: the CA key must be an EC key (fleetplane issues P-256 certificates)")
        ca = x509.load_pem_x509_certificate(cert.read_bytes())
        chain_pem = chain.read_bytes() if chain is not None else b""
        if chain_pem:
            above = x509.load_pem_x509_certificates(chain_pem)
            try:
                for issued, issuer in zip([ca, *above], [*above, above[-1]], strict=True):
                    issued.verify_directly_issued_by(issuer)
            except (ValueError, TypeError, InvalidSignature):
                raise ValueError(
                    f"{chain}: give the CAs above {cert} from its issuer "
                    f"({ca.issuer.rfc4514_string()}) up to a self-signed root, one PEM after another"
                ) from None
        return cls(ca, loaded, trust_domain, chain_pem)

    @classmethod
    def ensure(cls, folder: Path, trust_domain: str = DEFAULT_TRUST_DOMAIN) -> CertificateAuthority:
        """The folder's CA (``ca.crt``, ``ca.key``), made the first time.

        Processes started at once that share the folder must all get the same CA: one made twice
        signs some certificates with a key the others do not trust. A lock file serialises them.
        """
        cert, key = folder / "ca.crt", folder / "ca.key"
        if not (cert.exists() and key.exists()):
            folder.mkdir(parents=True, exist_ok=True)
            with open(folder / ".ca.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if not (cert.exists() and key.exists()):
                    made = cls.create(trust_domain)
                    # The key first, the certificate last: a reader that sees the certificate
                    # finds its key.
                    files.write_private(key, _private_pem(made._key))
                    files.write_private(cert, made.cert_pem)
                    cert.chmod(0o644)
        return cls.load(cert, key, trust_domain)

    @classmethod
    def create(cls, trust_domain: str = DEFAULT_TRUST_DOMAIN) -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
                x509.NameAttribute(NameOID.COMMON_NAME, f"{ORGANIZATION} CA ({trust_domain})"),
            ]
        )
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + CA_LIFETIME)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_key_usage(ca=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key, trust_domain)

    def issue(
        self,
        identity: Identity,
        *,
        lifetime: datetime.timedelta = DEFAULT_LIFETIME,
        hosts: tuple[str, ...] = (),
        server: bool = False,
        client: bool = True,
    ) -> Issued:
        """A certificate for ``identity``: a client certificate, and a serving one for ``hosts``
        when ``server`` (a service such as a broker is both: it serves and it connects to peers)."""
        if server and not hosts:
            raise ValueError(f"a serving certificate for {identity} needs the hosts it serves")
        usages = [ExtendedKeyUsageOID.SERVER_AUTH] if server else []
        if client:
            usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        if not usages:
            raise ValueError("a certificate must be for a client, a server or both")
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        not_after = min(now + lifetime, self.cert.not_valid_after_utc)
        serial = x509.random_serial_number()
        names: list[x509.GeneralName] = [
            x509.UniformResourceIdentifier(identity.spiffe_id(self.trust_domain))
        ]
        names += [_san(host) for host in hosts]
        cert = (
            x509.CertificateBuilder()
            .subject_name(identity.subject())
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        return Issued(cert.public_bytes(serialization.Encoding.PEM), _private_pem(key), serial, not_after)

    def write_bundle(self, path: Path) -> Path:
        """The CA certificate alone (what peers trust), world-readable."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.cert_pem)
        return path


def renewal_due(cert_pem: bytes, *, now: datetime.datetime | None = None, fraction: float = 2 / 3) -> bool:
    """Whether a certificate has used ``fraction`` of its lifetime: the time to issue its successor,
    early enough that a missed attempt or two still leave it valid."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    moment = now or datetime.datetime.now(datetime.UTC)
    return moment >= start + (end - start) * fraction


def not_after(cert_pem: bytes) -> datetime.datetime:
    """When the first certificate of ``cert_pem`` (a chain's leaf) expires."""
    return x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc
