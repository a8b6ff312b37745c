"""Who a certificate speaks for, written the same way in its subject, its SPIFFE ID and Kafka.

One identity is one (kind, name) pair, and for a cluster also its *incarnation*: the placement slot
Maestro gave the cluster when it was registered, never handed out again. A cluster deleted and
created again under the same name is a new incarnation, so a certificate of the old one names a
Kafka principal that no ACL mentions any more.

- subject: ``O=fleetplane, OU=<kind>, CN=<name>`` and, for a cluster, ``UID=<incarnation>``
  (Kafka takes a TLS principal from the subject, mapped by :data:`KAFKA_PRINCIPAL_RULES`);
- SAN URI: ``spiffe://<trust domain>/<kind>/<name>`` (argocd-agent and service meshes read these);
- Kafka principal: ``User:<kind>.<name>`` and, for a cluster, ``User:cluster.<name>.<incarnation>``
  where the brokers map subjects by :data:`KAFKA_PRINCIPAL_RULES`; ``User:`` and the whole subject
  in RFC 2253 order (``User:UID=<incarnation>,CN=<name>,OU=<kind>,O=fleetplane``) where they
  cannot (Amazon MSK): :class:`PrincipalForm`.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

ORGANIZATION = "fleetplane"
DEFAULT_TRUST_DOMAIN = "fleetplane.local"

# Kubernetes object names (DNS-1123 subdomains): nothing in them needs escaping in a subject, a
# URI path or a Kafka principal.
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_INCARNATION = re.compile(r"^[0-9]{1,19}$")
_TRUST_DOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


class Kind(enum.StrEnum):
    """What an identity is for; the kind decides what it may do before any RBAC is asked."""

    # a worker cluster's agent: reads its own cluster's work, reports its own cluster's status
    CLUSTER = "cluster"
    # a source of work (the hub controllers, a user's client): publishes and reads its own works
    SOURCE = "source"
    # an operator of the platform: consumers, any source's works, deletes
    ADMIN = "admin"
    # a platform service (the Maestro server, a broker, a database)
    SERVICE = "service"


class PrincipalForm(enum.StrEnum):
    """How the brokers name a client authenticated by its certificate."""

    # mapped by KAFKA_PRINCIPAL_RULES (the brokers set `ssl.principal.mapping.rules`)
    MAPPED = "mapped"
    # Kafka's DEFAULT rule: the certificate's whole subject, most specific attribute first (a
    # managed Kafka whose configuration cannot set the rules, as Amazon MSK's cannot)
    SUBJECT = "subject"


class IdentityError(ValueError):
    """A certificate or name that is not a fleetplane identity; the message says what to fix."""


@dataclass(frozen=True, slots=True)
class Identity:
    kind: Kind
    name: str
    incarnation: str | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name) or len(self.name) > 253:
            raise IdentityError(
                f"identity name {self.name!r} is not a DNS-1123 subdomain: "
                "use lower-case letters, digits, '-' and '.'"
            )
        if self.kind is Kind.CLUSTER:
            if self.incarnation is None or not _INCARNATION.match(self.incarnation):
                raise IdentityError(
                    f"cluster identity {self.name!r} needs its incarnation (the cluster's Maestro "
                    f"placement slot, digits), got {self.incarnation!r}"
                )
        elif self.incarnation is not None:
            raise IdentityError(f"only a cluster identity has an incarnation, not a {self.kind} one")

    @classmethod
    def cluster(cls, name: str, incarnation: int | str) -> Identity:
        return cls(Kind.CLUSTER, name, str(incarnation))

    @classmethod
    def source(cls, name: str) -> Identity:
        return cls(Kind.SOURCE, name)

    @classmethod
    def admin(cls, name: str) -> Identity:
        return cls(Kind.ADMIN, name)

    @classmethod
    def service(cls, name: str) -> Identity:
        return cls(Kind.SERVICE, name)

    def spiffe_id(self, trust_domain: str = DEFAULT_TRUST_DOMAIN) -> str:
        return f"spiffe://{trust_domain}/{self.kind}/{self.name}"

    def subject(self) -> x509.Name:
        attributes = [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, str(self.kind)),
            x509.NameAttribute(NameOID.COMMON_NAME, self.name),
        ]
        if self.incarnation is not None:
            attributes.append(x509.NameAttribute(NameOID.USER_ID, self.incarnation))
        return x509.Name(attributes)

    @property
    def kafka_principal(self) -> str:
        """The principal Kafka's ACLs name, as :data:`KAFKA_PRINCIPAL_RULES` maps the subject."""
        if self.incarnation is not None:
            return f"User:{self.kind}.{self.name}.{self.incarnation}"
        return f"User:{self.kind}.{self.name}"

    def kafka_principal_as(self, form: PrincipalForm) -> str:
        """The principal Kafka's ACLs name when the brokers name clients the ``form`` way."""
        if form is PrincipalForm.SUBJECT:
            # RFC 4514 writes the attributes in RFC 2253's order, as Kafka's DEFAULT rule does
            return f"User:{self.subject().rfc4514_string()}"
        return self.kafka_principal

    def __str__(self) -> str:
        suffix = f"#{self.incarnation}" if self.incarnation is not None else ""
        return f"{self.kind}/{self.name}{suffix}"


# Kafka's `ssl.principal.mapping.rules`. Kafka matches them against the subject in RFC 2253 order
# (most specific first: UID, CN, OU, O); a subject of any other shape keeps its whole DN, which no
# ACL names.
KAFKA_PRINCIPAL_RULES = ",".join(
    [
        rf"RULE:^UID=([0-9]+),CN=([a-z0-9.-]+),OU=cluster,O={ORGANIZATION}$/cluster.$2.$1/",
        rf"RULE:^CN=([a-z0-9.-]+),OU=(source|admin|service),O={ORGANIZATION}$/$2.$1/",
        "DEFAULT",
    ]
)


_MAPPED_CLUSTER = re.compile(r"^User:cluster\.[a-z0-9.-]+\.([0-9]{1,19})$")
_SUBJECT_CLUSTER = re.compile(rf"^User:UID=([0-9]{{1,19}}),CN=[a-z0-9.-]+,OU=cluster,O={ORGANIZATION}$")


def cluster_incarnation(principal: str) -> int | None:
    """The incarnation a cluster's Kafka principal names, in either :class:`PrincipalForm`; None
    for any other principal."""
    found = _MAPPED_CLUSTER.match(principal) or _SUBJECT_CLUSTER.match(principal)
    return int(found.group(1)) if found else None


def validate_trust_domain(domain: str) -> str:
    if not _TRUST_DOMAIN.match(domain) or len(domain) > 255:
        raise IdentityError(
            f"trust domain {domain!r} is not valid: use lower-case letters, digits, '-' and '.'"
        )
    return domain


def from_certificate(cert: x509.Certificate, trust_domain: str = DEFAULT_TRUST_DOMAIN) -> Identity:
    """The identity a verified peer certificate speaks for.

    The SPIFFE ID is authoritative (it is what the CA vouched for); the subject must agree with it,
    so the name Kafka sees and the name the gRPC server sees can never differ.
    """
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        raise IdentityError("the certificate has no SPIFFE ID (no subject alternative name)") from None
    prefix = f"spiffe://{trust_domain}/"
    uris = [uri for uri in sans.get_values_for_type(x509.UniformResourceIdentifier) if uri.startswith(prefix)]
    if len(uris) != 1:
        raise IdentityError(f"the certificate needs exactly one SPIFFE ID under {prefix}, has {len(uris)}")
    kind_text, _, name = uris[0][len(prefix) :].partition("/")
    try:
        kind = Kind(kind_text)
    except ValueError:
        raise IdentityError(f"unknown identity kind {kind_text!r} in {uris[0]}") from None
    uids = cert.subject.get_attributes_for_oid(NameOID.USER_ID)
    incarnation = str(uids[0].value) if uids else None
    identity = Identity(kind, name, incarnation)
    if cert.subject != identity.subject():
        raise IdentityError(
            f"the certificate's subject {cert.subject.rfc4514_string()} does not match its SPIFFE ID "
            f"{uris[0]}"
        )
    return identity
