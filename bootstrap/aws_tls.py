"""The aws stack's TLS material: an ACM Private CA root, the platform CA under it, and the identities.

MSK authenticates clients by certificates of an ACM Private CA it is told to trust. So the stack
makes a root CA in ACM Private CA and has it issue the platform CA as a subordinate
(``SubordinateCACertificate_PathLen0``: it may issue only end-entity certificates); the platform
CA's key is made by the stack (``pulumi_tls``) and kept in its state as a secret, because the
provisioner needs it to issue each worker cluster's agent certificate. The platform CA then signs
the identities of the hub's processes (docs/security.md): subject ``O=fleetplane, OU=<kind>,
CN=<name>`` and the SPIFFE ID ``spiffe://<trust domain>/<kind>/<name>``.

Each identity's ``tls.crt`` carries the platform CA after the leaf, so a peer that trusts only the
root (MSK) can build the chain; ``ca.crt`` holds the platform CA and the root, so the processes'
verification ends at a self-signed certificate.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_tls as tls

from trust.identity import DEFAULT_TRUST_DOMAIN, ORGANIZATION, Identity

#: ACM Private CA templates: the root's own certificate, and a CA below it that issues only leaves.
ROOT_TEMPLATE = "arn:aws:acm-pca:::template/RootCACertificate/V1"
SUBORDINATE_TEMPLATE = "arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen0/V1"
SIGNING_ALGORITHM = "SHA256WITHECDSA"
#: the identities' lifetime; the stack reissues them when a `pulumi up` finds them within the
#: renewal window (pulumi_tls's early renewal)
LEAF_HOURS = 24 * 90
RENEW_HOURS = 24 * 30


@dataclass(frozen=True)
class Pem:
    """One identity's files, as a Kubernetes TLS Secret holds them."""

    ca: pulumi.Output[str]
    cert: pulumi.Output[str]
    key: pulumi.Output[str]


@dataclass(frozen=True)
class PlatformTls:
    #: the ACM Private CA that MSK trusts for client certificates
    root: aws.acmpca.CertificateAuthority
    #: the root's own certificate (what a chain from the platform CA ends at)
    root_cert: pulumi.Output[str]
    #: the platform CA's certificate and key (the provisioner's ``caSecret``)
    ca_cert: pulumi.Output[str]
    ca_key: pulumi.Output[str]
    #: the subordinate CA's certificate request to ACM Private CA
    subordinate: aws.acmpca.Certificate
    identities: dict[str, Pem]


def create(
    identities: dict[str, tuple[Identity, list[str]]], trust_domain: str = DEFAULT_TRUST_DOMAIN
) -> PlatformTls:
    """The root, the platform CA, and one certificate per ``identities`` entry (name -> the
    identity and the DNS names it serves; a server identity has some, a client none)."""
    root = aws.acmpca.CertificateAuthority(
        "platform-root",
        type="ROOT",
        certificate_authority_configuration={
            "key_algorithm": "EC_prime256v1",
            "signing_algorithm": SIGNING_ALGORITHM,
            "subject": {"organization": ORGANIZATION, "common_name": "fleetplane root CA"},
        },
        permanent_deletion_time_in_days=7,
        tags={"app.kubernetes.io/part-of": "fleetplane"},
    )
    root_cert = aws.acmpca.Certificate(
        "platform-root",
        certificate_authority_arn=root.arn,
        certificate_signing_request=root.certificate_signing_request,
        signing_algorithm=SIGNING_ALGORITHM,
        template_arn=ROOT_TEMPLATE,
        validity={"type": "YEARS", "value": "10"},
    )
    # The root issues nothing until its own certificate is installed (it is then ACTIVE).
    active = aws.acmpca.CertificateAuthorityCertificate(
        "platform-root",
        certificate_authority_arn=root.arn,
        certificate=root_cert.certificate,
        certificate_chain=root_cert.certificate_chain,
    )
    ca_key = tls.PrivateKey("platform-ca", algorithm="ECDSA", ecdsa_curve="P256")
    ca_request = tls.CertRequest(
        "platform-ca",
        private_key_pem=ca_key.private_key_pem,
        subject={"organization": ORGANIZATION, "common_name": "fleetplane platform CA"},
    )
    subordinate = aws.acmpca.Certificate(
        "platform-ca",
        certificate_authority_arn=root.arn,
        certificate_signing_request=ca_request.cert_request_pem,
        signing_algorithm=SIGNING_ALGORITHM,
        template_arn=SUBORDINATE_TEMPLATE,
        validity={"type": "YEARS", "value": "5"},
        opts=pulumi.ResourceOptions(depends_on=[active]),
    )
    ca_cert = subordinate.certificate
    trusted = pulumi.Output.concat(ca_cert, "\n", root_cert.certificate, "\n")
    issued = {
        name: _issue(name, who, dns, trust_domain, ca_cert, ca_key.private_key_pem, trusted)
        for name, (who, dns) in identities.items()
    }
    return PlatformTls(root, root_cert.certificate, ca_cert, ca_key.private_key_pem, subordinate, issued)


def _issue(
    name: str,
    who: Identity,
    dns: list[str],
    trust_domain: str,
    ca_cert: pulumi.Output[str],
    ca_key: pulumi.Output[str],
    trusted: pulumi.Output[str],
) -> Pem:
    key = tls.PrivateKey(name, algorithm="ECDSA", ecdsa_curve="P256")
    subject = tls.CertRequestSubjectArgs(
        organization=ORGANIZATION, organizational_unit=str(who.kind), common_name=who.name
    )
    request = tls.CertRequest(
        name,
        private_key_pem=key.private_key_pem,
        subject=subject,
        uris=[who.spiffe_id(trust_domain)],
        dns_names=dns,
    )
    uses = ["digital_signature", "client_auth", *(["server_auth"] if dns else [])]
    cert = tls.LocallySignedCert(
        name,
        cert_request_pem=request.cert_request_pem,
        ca_private_key_pem=ca_key,
        ca_cert_pem=ca_cert,
        validity_period_hours=LEAF_HOURS,
        early_renewal_hours=RENEW_HOURS,
        allowed_uses=uses,
    )
    # PEM readers skip the blank line a certificate ending in a newline leaves
    chain = pulumi.Output.concat(cert.cert_pem, "\n", ca_cert, "\n")
    return Pem(ca=trusted, cert=chain, key=key.private_key_pem)
