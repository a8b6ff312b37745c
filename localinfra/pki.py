"""Certificates for local clusters and platform processes: one CA per environment.

Every API server gets real TLS and every client a certificate (``O=system:masters`` for admins),
so the kubeconfigs we hand out authenticate the way production ones do.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from localinfra.environment import Environment
from trust import authority, files
from trust.identity import Identity


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


def _write_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, path: Path) -> None:
    files.write_private(
        path,
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return builder.not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(
        now + datetime.timedelta(days=365)
    )


def ensure_ca(folder: Path) -> KeyPair:
    """The environment's CA, made the first time: one trust root for its clusters' API servers and
    for the platform's identities (``identity_files``)."""
    authority.CertificateAuthority.ensure(folder)
    return KeyPair(folder / "ca.crt", folder / "ca.key")


def platform_ca(env: Environment) -> authority.CertificateAuthority:
    return authority.CertificateAuthority.ensure(env.path("pki"))


def identity_files(
    env: Environment,
    who: Identity,
    *,
    hosts: tuple[str, ...] = (),
    server: bool = False,
    lifetime: datetime.timedelta = authority.DEFAULT_LIFETIME,
) -> files.TLSFiles:
    """A certificate for a platform identity, issued by the environment's CA, with the CA beside it,
    in ``<env>/identities/<kind>-<name>/``: what a local process of the platform is given."""
    ca = platform_ca(env)
    folder = env.path("identities", f"{who.kind}-{who.name}")
    return ca.issue(who, hosts=hosts, server=server, lifetime=lifetime).write(folder, "tls", ca.cert_pem)


def ensure_identity_files(
    env: Environment,
    who: Identity,
    *,
    hosts: tuple[str, ...] = (),
    server: bool = False,
) -> files.TLSFiles:
    """``identity_files``, issued only when the folder holds no valid certificate of ``who`` by this
    CA yet (or it is due for renewal): processes started from the same folder share one pair, and
    one still reading it never sees it replaced under it."""
    folder = env.path("identities", f"{who.kind}-{who.name}")
    existing = files.TLSFiles(ca=folder / "ca.crt", cert=folder / "tls.crt", key=folder / "tls.key")
    assert existing.cert is not None and existing.key is not None
    if existing.cert.is_file() and existing.key.is_file() and existing.ca.is_file():
        pem = existing.cert.read_bytes()
        cert = x509.load_pem_x509_certificate(pem)
        ca = platform_ca(env)
        if (
            cert.subject == who.subject()
            and existing.ca.read_bytes() == ca.cert_pem
            and not authority.renewal_due(pem)
            and all(host in _sans(cert) for host in hosts)
        ):
            return existing
    return identity_files(env, who, hosts=hosts, server=server)


def _sans(cert: x509.Certificate) -> set[str]:
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(v) for v in names.get_values_for_type(x509.IPAddress)} | set(
        names.get_values_for_type(x509.DNSName)
    )


def issue(
    ca: KeyPair,
    folder: Path,
    stem: str,
    *,
    cn: str,
    org: str | None = None,
    hosts: tuple[str, ...] = (),
    server: bool = False,
) -> KeyPair:
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = serialization.load_pem_private_key(ca.key.read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(ca.cert.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    usage = x509.oid.ExtendedKeyUsageOID.SERVER_AUTH if server else x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        _validity(x509.CertificateBuilder())
        .subject_name(_name(cn, org))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if hosts:
        sans: list[x509.GeneralName] = []
        for host in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    pair = KeyPair(folder / f"{stem}.crt", folder / f"{stem}.key")
    _write_key(key, pair.key)
    pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return pair


def service_account_keys(folder: Path) -> KeyPair:
    """The key pair that signs service account tokens (``cert`` holds the public key)."""
    pair = KeyPair(folder / "sa.pub", folder / "sa.key")
    if pair.key.exists():
        return pair
    folder.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_key(key, pair.key)
    pair.cert.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pair
