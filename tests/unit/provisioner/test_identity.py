"""A cluster's agent identity as the provisioner composes it.

Cases: a composed ClusterIdentity is checked field by field with errors naming the field; the
Secret holds a certificate for the cluster's incarnation, its key and the CA, and says which serial
it is; a Secret is reissued when missing, unreadable, from another CA, for another incarnation or
past two thirds of its lifetime, and left alone otherwise. A service's certificate (Argo CD's
repo-server) serves its DNS names and cannot act as a client, is reissued when the names change,
and rolls the workloads that read it only at start.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from provisioner import identity
from trust import authority
from trust.identity import Identity
from trust.identity import from_certificate as identity_of

COMPOSED = {
    "kind": "ClusterIdentity",
    "consumer": "worker-1",
    "secret": {"name": "maestro-agent-identity", "namespace": "open-cluster-management-agent"},
    "lifetimeSeconds": 3600,
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "Secret"}, "kind: ClusterIdentity"),
        ({"consumer": ""}, "object.consumer is missing"),
        ({"secret": {"name": "x"}}, "object.secret needs name and namespace"),
        ({"lifetimeSeconds": 5}, "object.lifetimeSeconds is 5"),
        ({"lifetimeSeconds": "1h"}, "object.lifetimeSeconds is '1h'"),
        ({"service": "Repo Server", "dnsNames": ["a"]}, "object.service is 'Repo Server'"),
        ({"dnsNames": ["a"]}, "object.dnsNames and object.usage need object.service"),
        ({"service": "repo", "usage": "both"}, "object.usage is 'both'"),
        ({"keys": {"certificate": ""}}, "object.keys is {certificate: NAME"),
        ({"service": "repo"}, "object.dnsNames must list the names"),
        ({"restartOnRenewal": [{"kind": "Pod", "name": "x"}]}, "object.restartOnRenewal lists"),
    ],
    ids=[
        "kind",
        "consumer",
        "secret",
        "too-short",
        "not-a-number",
        "service",
        "names-alone",
        "no-names",
        "restart-kind",
        "usage",
        "keys",
    ],
)
def test_bad_identity_resources_name_the_field(change: dict[str, object], message: str) -> None:
    found = identity.problems({**COMPOSED, **change})
    assert found and message in found[0]
    with pytest.raises(ValueError, match="object"):
        identity.request({**COMPOSED, **change})


@pytest.fixture(scope="module")
def ca() -> authority.CertificateAuthority:
    return authority.CertificateAuthority.create()


def test_secret_holds_the_clusters_certificate_key_and_ca(ca: authority.CertificateAuthority) -> None:
    wanted = identity.request(COMPOSED)
    who = Identity.cluster("worker-1", 17)
    secret = identity.issued_secret(wanted, who, ca)
    assert secret["type"] == "kubernetes.io/tls"
    assert secret["metadata"]["namespace"] == "open-cluster-management-agent"
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    assert identity_of(cert) == who
    assert base64.b64decode(secret["data"]["ca.crt"]) == ca.cert_pem
    assert b"PRIVATE KEY" in base64.b64decode(secret["data"]["tls.key"])
    assert identity.serial_of(secret, wanted) == cert.serial_number
    assert str(cert.serial_number) in identity.describe(secret)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert datetime.timedelta(hours=1) <= lifetime <= datetime.timedelta(hours=1, minutes=5)


def test_reissue_only_when_needed(ca: authority.CertificateAuthority) -> None:
    wanted = identity.request(COMPOSED)
    who = Identity.cluster("worker-1", 17)
    secret = identity.issued_secret(wanted, who, ca)
    issued_at = x509.load_pem_x509_certificate(
        base64.b64decode(secret["data"]["tls.crt"])
    ).not_valid_before_utc
    assert identity.reissue_reason(secret, wanted, who, ca) is None
    assert identity.reissue_reason(None, wanted, who, ca) == "no certificate yet"
    assert "no readable certificate" in str(
        identity.reissue_reason({"data": {"tls.crt": "eA=="}}, wanted, who, ca)
    )
    assert (
        identity.reissue_reason(secret, wanted, who, authority.CertificateAuthority.create())
        == "the platform CA changed"
    )
    assert "another identity" in str(
        identity.reissue_reason(secret, wanted, Identity.cluster("worker-1", 18), ca)
    )
    later = issued_at + datetime.timedelta(minutes=50)
    assert "renewal due" in str(identity.reissue_reason(secret, wanted, who, ca, now=later))


def subordinate_of(root: authority.CertificateAuthority) -> authority.CertificateAuthority:
    """A platform CA that ``root`` signed, as ACM Private CA signs the aws stack's."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    signer = root._key  # the test plays the root's operator
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fleetplane platform CA")]))
        .issuer_name(root.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(signer, hashes.SHA256())
    )
    return authority.CertificateAuthority(cert, key, chain_pem=root.cert_pem)


def test_under_a_subordinate_ca_the_agent_gets_the_chain_and_the_brokers_cas() -> None:
    """The platform CA under a root (the aws stack's, under ACM Private CA): tls.crt carries the
    platform CA after the leaf, for peers that trust only the root (MSK); ca.crt the CAs up to the
    root, where TLS verification must end; kafka-ca.crt the brokers' own CAs, for the agent only.
    A change of either bundle reissues the Secret."""
    root = authority.CertificateAuthority.create()
    platform = subordinate_of(root)
    brokers = authority.CertificateAuthority.create().cert_pem
    wanted = identity.request(COMPOSED)
    who = Identity.cluster("worker-1", 17)
    secret = identity.issued_secret(wanted, who, platform, kafka_ca=brokers)
    data = {key: base64.b64decode(value) for key, value in secret["data"].items()}
    chain = x509.load_pem_x509_certificates(data["tls.crt"])
    assert [c.subject for c in chain] == [who.subject(), platform.cert.subject]
    assert [c.subject for c in x509.load_pem_x509_certificates(data["ca.crt"])] == [
        platform.cert.subject,
        root.cert.subject,
    ]
    assert data["kafka-ca.crt"] == brokers
    assert identity.reissue_reason(secret, wanted, who, platform, kafka_ca=brokers) is None
    assert identity.reissue_reason(secret, wanted, who, platform) == "the brokers' CA bundle changed"
    other = authority.CertificateAuthority.create().cert_pem
    assert identity.reissue_reason(secret, wanted, who, platform, kafka_ca=other) == (
        "the brokers' CA bundle changed"
    )
    # a service's certificate never speaks to Kafka
    service = identity.request(REPO_SERVER)
    served = identity.issued_secret(service, service.identity(""), platform, kafka_ca=brokers)
    assert "kafka-ca.crt" not in served["data"]


REPO_SERVER = {
    **COMPOSED,
    "service": "argocd-repo-server",
    "dnsNames": ["argocd-repo-server", "argocd-repo-server.argocd.svc"],
    "secret": {"name": "argocd-repo-server-tls", "namespace": "argocd"},
    "restartOnRenewal": [{"kind": "Deployment", "name": "argocd-repo-server"}],
}


def test_a_services_certificate_serves_its_names_and_is_no_client(ca: authority.CertificateAuthority) -> None:
    wanted = identity.request(REPO_SERVER)
    who = wanted.identity(17)
    assert who == Identity.service("worker-1.argocd-repo-server")
    secret = identity.issued_secret(wanted, who, ca)
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["argocd-repo-server", "argocd-repo-server.argocd.svc"]
    usages = list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    assert usages == [x509.ExtendedKeyUsageOID.SERVER_AUTH]  # never a client of Maestro or Kafka
    assert secret["metadata"]["labels"] == {"app.kubernetes.io/name": "argocd-repo-server"}
    assert identity.reissue_reason(secret, wanted, who, ca) is None
    assert "names it serves changed" in str(
        identity.reissue_reason(
            secret, dataclasses.replace(wanted, dns_names=("argocd-repo-server",)), who, ca
        )
    )
    (patch,) = identity.restart_patches(wanted, secret)
    assert patch["kind"] == "Deployment" and patch["metadata"] == {
        "name": "argocd-repo-server",
        "namespace": "argocd",
    }
    rolled = patch["spec"]["template"]["metadata"]["annotations"]
    assert rolled == {"rollout.fleetplane.io/argocd-repo-server-tls": str(cert.serial_number)}
    assert identity.rollout_manager(wanted) == "fleetplane-rollout-argocd-repo-server-tls"


def test_the_agents_identity_is_its_clusters_incarnation() -> None:
    assert identity.request(COMPOSED).identity(17) == Identity.cluster("worker-1", 17)
    assert identity.restart_patches(identity.request(COMPOSED), {}) == []


def test_a_client_certificate_under_the_key_names_its_consumer_expects(
    ca: authority.CertificateAuthority,
) -> None:
    """Argo CD's argocd-repo-server-mtls: the controller's client certificate, and the CA the
    repo-server checks clients against and the controller checks the server against."""
    wanted = identity.request(
        {
            **COMPOSED,
            "service": "argocd-application-controller",
            "usage": "client",
            "secret": {"name": "argocd-repo-server-mtls", "namespace": "argocd"},
            "keys": {
                "certificate": "client.crt",
                "key": "client.key",
                "ca": ["client-ca.crt", "server-ca.crt"],
            },
        }
    )
    who = wanted.identity(17)
    secret = identity.issued_secret(wanted, who, ca)
    assert secret["type"] == "Opaque"
    assert sorted(secret["data"]) == ["client-ca.crt", "client.crt", "client.key", "server-ca.crt"]
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["client.crt"]))
    assert identity_of(cert) == Identity.service("worker-1.argocd-application-controller")
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert x509.ExtendedKeyUsageOID.CLIENT_AUTH in usages
    assert identity.serial_of(secret, wanted) == cert.serial_number
    assert identity.reissue_reason(secret, wanted, who, ca) is None
    changed = identity.reissue_reason(secret, wanted, who, authority.CertificateAuthority.create())
    assert changed == "the platform CA changed"


def test_a_ca_folders_chain_must_lead_from_its_issuer_to_a_root(tmp_path: Path) -> None:
    root = authority.CertificateAuthority.create()
    platform = subordinate_of(root)
    cert, key, chain = tmp_path / "ca.crt", tmp_path / "ca.key", tmp_path / authority.CHAIN_FILE
    cert.write_bytes(platform.cert_pem)
    key.write_bytes(authority._private_pem(platform._key))
    chain.write_bytes(root.cert_pem)
    assert authority.CertificateAuthority.load(cert, key, chain=chain).bundle_pem == platform.bundle_pem
    chain.write_bytes(authority.CertificateAuthority.create().cert_pem)
    with pytest.raises(ValueError, match="up to a self-signed root"):
        authority.CertificateAuthority.load(cert, key, chain=chain)
