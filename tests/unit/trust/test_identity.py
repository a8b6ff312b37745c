"""Identities and the CA: what a certificate says, and what refuses a certificate that says otherwise.

Cases: each kind's subject, SPIFFE ID and Kafka principal; a cluster needs its incarnation and no
other kind has one; names outside DNS-1123 refused; an issued certificate reads back as the
identity it was issued for, under the CA's trust domain only; a subject that disagrees with the
SPIFFE ID is refused; usages and lifetime; renewal falls due at two thirds of the lifetime;
private files are 0600; the CA made once per folder.
"""

from __future__ import annotations

import datetime
import re
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID

from trust import authority, files, identity
from trust.identity import Identity, IdentityError, Kind, PrincipalForm


@pytest.mark.parametrize(
    ("who", "spiffe", "principal", "dn"),
    [
        (
            Identity.cluster("worker-1", 7),
            "spiffe://fleetplane.local/cluster/worker-1",
            "User:cluster.worker-1.7",
            "UID=7,CN=worker-1,OU=cluster,O=fleetplane",
        ),
        (
            Identity.source("argocd-pull"),
            "spiffe://fleetplane.local/source/argocd-pull",
            "User:source.argocd-pull",
            "CN=argocd-pull,OU=source,O=fleetplane",
        ),
        (
            Identity.service("maestro-server"),
            "spiffe://fleetplane.local/service/maestro-server",
            "User:service.maestro-server",
            "CN=maestro-server,OU=service,O=fleetplane",
        ),
    ],
    ids=["cluster", "source", "service"],
)
def test_identity_is_written_the_same_everywhere(who: Identity, spiffe: str, principal: str, dn: str) -> None:
    assert who.spiffe_id() == spiffe
    assert who.kafka_principal == principal
    assert who.subject().rfc4514_string() == dn


def test_kafka_principal_rules_map_each_subject_to_its_principal() -> None:
    """Kafka applies the rules as Java regexes to the RFC 2253 subject; Python's re agrees on these."""
    rules = [r for r in identity.KAFKA_PRINCIPAL_RULES.split(",RULE:")]
    rules = [r.removeprefix("RULE:") for r in rules]
    *patterns, last = rules
    assert last.endswith(",DEFAULT")
    patterns.append(last.removesuffix(",DEFAULT"))

    def principal(dn: str) -> str:
        for rule in patterns:
            pattern, replacement, _ = rule.split("/")
            found = re.match(pattern, dn)
            if found:
                return "User:" + found.expand(replacement.replace("$", "\\"))
        return "User:" + dn

    for who in (Identity.cluster("a.b-c", 12), Identity.source("hub"), Identity.admin("ops")):
        assert principal(who.subject().rfc4514_string()) == who.kafka_principal
    assert principal("CN=intruder,O=elsewhere") == "User:CN=intruder,O=elsewhere"


def test_a_subject_principal_is_the_whole_subject_as_kafka_writes_it() -> None:
    """Where the brokers cannot map subjects (Amazon MSK), Kafka's DEFAULT rule names a client by
    its subject in RFC 2253 order; both forms give back a cluster's incarnation, no other's."""
    worker = Identity.cluster("a.b-c", 12)
    subject = worker.kafka_principal_as(PrincipalForm.SUBJECT)
    assert subject == "User:UID=12,CN=a.b-c,OU=cluster,O=fleetplane"
    assert worker.kafka_principal_as(PrincipalForm.MAPPED) == worker.kafka_principal
    server = Identity.service("maestro-server").kafka_principal_as(PrincipalForm.SUBJECT)
    assert server == "User:CN=maestro-server,OU=service,O=fleetplane"
    assert identity.cluster_incarnation(subject) == 12
    assert identity.cluster_incarnation(worker.kafka_principal) == 12
    for other in (server, "User:service.maestro-server", "User:UID=3,CN=x,OU=cluster,O=elsewhere"):
        assert identity.cluster_incarnation(other) is None


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Identity(Kind.CLUSTER, "worker-1"), "needs its incarnation"),
        (lambda: Identity.cluster("worker-1", "x1"), "needs its incarnation"),
        (lambda: Identity(Kind.SOURCE, "hub", "3"), "only a cluster identity"),
        (lambda: Identity.source("Hub_1"), "not a DNS-1123 subdomain"),
        (lambda: Identity.source("a,OU=admin"), "not a DNS-1123 subdomain"),
    ],
    ids=[
        "cluster-without-incarnation",
        "non-numeric-incarnation",
        "source-with-incarnation",
        "bad-name",
        "injection",
    ],
)
def test_bad_identities_are_refused(make: object, message: str) -> None:
    with pytest.raises(IdentityError, match=message):
        make()  # type: ignore[operator]


@pytest.fixture(scope="module")
def ca() -> authority.CertificateAuthority:
    return authority.CertificateAuthority.create("example.org")


def test_issued_certificate_reads_back_as_its_identity(ca: authority.CertificateAuthority) -> None:
    who = Identity.cluster("worker-2", 41)
    issued = ca.issue(who, lifetime=datetime.timedelta(minutes=2))
    cert = x509.load_pem_x509_certificate(issued.cert_pem)
    assert identity.from_certificate(cert, "example.org") == who
    assert cert.serial_number == issued.serial
    assert cert.issuer == ca.cert.subject
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= datetime.timedelta(minutes=7)
    ca.cert.public_key().verify(  # type: ignore[call-arg, union-attr]
        cert.signature, cert.tbs_certificate_bytes, _ecdsa(cert)
    )


def _ecdsa(cert: x509.Certificate) -> object:
    from cryptography.hazmat.primitives.asymmetric import ec

    assert cert.signature_hash_algorithm is not None
    return ec.ECDSA(cert.signature_hash_algorithm)


def test_identity_of_another_trust_domain_is_refused(ca: authority.CertificateAuthority) -> None:
    cert = x509.load_pem_x509_certificate(ca.issue(Identity.admin("ops")).cert_pem)
    with pytest.raises(IdentityError, match=r"SPIFFE ID under spiffe://fleetplane\.local/"):
        identity.from_certificate(cert)


def test_subject_disagreeing_with_spiffe_id_is_refused(ca: authority.CertificateAuthority) -> None:
    """A certificate whose subject names one identity and whose SAN another is nobody's."""
    issued = x509.load_pem_x509_certificate(ca.issue(Identity.source("hub")).cert_pem)
    forged = (
        x509.CertificateBuilder()
        .subject_name(Identity.admin("hub").subject())
        .issuer_name(issued.issuer)
        .public_key(issued.public_key())
        .serial_number(1)
        .not_valid_before(issued.not_valid_before_utc)
        .not_valid_after(issued.not_valid_after_utc)
        .add_extension(issued.extensions.get_extension_for_class(x509.SubjectAlternativeName).value, False)
        .sign(ca._key, hashes.SHA256())
    )
    with pytest.raises(IdentityError, match="does not match its SPIFFE ID"):
        identity.from_certificate(forged, "example.org")


def test_serving_certificate_names_its_hosts(ca: authority.CertificateAuthority) -> None:
    issued = ca.issue(Identity.service("kafka"), hosts=("127.0.0.1", "localhost"), server=True)
    cert = x509.load_pem_x509_certificate(issued.cert_pem)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    usages = list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert usages == [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    with pytest.raises(ValueError, match="needs the hosts it serves"):
        ca.issue(Identity.service("kafka"), server=True)


def test_renewal_falls_due_at_two_thirds_of_the_lifetime(ca: authority.CertificateAuthority) -> None:
    issued = ca.issue(Identity.cluster("w", 1), lifetime=datetime.timedelta(hours=3))
    start = x509.load_pem_x509_certificate(issued.cert_pem).not_valid_before_utc
    assert not authority.renewal_due(issued.cert_pem, now=start + datetime.timedelta(hours=1))
    assert authority.renewal_due(issued.cert_pem, now=start + datetime.timedelta(hours=2, minutes=30))


def test_private_files_are_owner_only_and_the_ca_is_made_once(tmp_path: Path) -> None:
    first = authority.CertificateAuthority.ensure(tmp_path / "pki")
    again = authority.CertificateAuthority.ensure(tmp_path / "pki")
    assert first.cert_pem == again.cert_pem
    assert stat.S_IMODE((tmp_path / "pki" / "ca.key").stat().st_mode) == 0o600
    pair = first.issue(Identity.source("hub")).write(tmp_path / "hub", "client", first.cert_pem)
    assert pair.key is not None and stat.S_IMODE(pair.key.stat().st_mode) == 0o600
    assert pair.ca.read_bytes() == first.cert_pem
    secret = files.write_private(tmp_path / "token", "s3cret")
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and secret.read_text() == "s3cret"
    with pytest.raises(ValueError, match="needs its key"):
        files.TLSFiles(ca=pair.ca, cert=pair.cert)
