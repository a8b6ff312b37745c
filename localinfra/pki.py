"""Certificates for local clusters: one CA per environment, serving and client certificates.

Every API server gets real TLS and every client a certificate (``O=system:masters`` for admins),
so the kubeconfigs we hand out authenticate the way production ones do.
"""

from __future__ import annotations

import datetime
import fcntl
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


def _write_key(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)


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
    """The folder's CA, made the first time. Clusters started at once (the provisioner starts each
    in a thread; two processes may share a folder) must all get the same one: a CA made twice
    signs some clusters' client certificates with a key their API server does not trust."""
    pair = KeyPair(folder / "ca.crt", folder / "ca.key")
    if pair.cert.exists() and pair.key.exists():
        return pair
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".ca.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (pair.cert.exists() and pair.key.exists()):
            _make_ca(pair)
    return pair


def _make_ca(pair: KeyPair) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name("fleetplane-local-ca")
    cert = (
        _validity(x509.CertificateBuilder())
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    # Written aside and renamed, the certificate last: a reader outside the lock never sees half.
    staged = KeyPair(pair.cert.with_suffix(".crt.tmp"), pair.key.with_suffix(".key.tmp"))
    _write_key(key, staged.key)
    staged.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    os.replace(staged.key, pair.key)
    os.replace(staged.cert, pair.cert)


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
