"""Each worker cluster's own identities: the certificate its Maestro agent presents to Maestro and
Kafka, and the serving certificates of the cluster's own services (Argo CD's repo-server).

A composition asks for one with a ``target: identity`` resource (kind ``ClusterIdentity``). The
provisioner issues it from the platform CA once the cluster's Maestro consumer exists — the
consumer's placement slot is the agent identity's *incarnation*, so a cluster deleted and created
again under the same name never makes an old certificate valid again — and writes it into the
worker as a ``kubernetes.io/tls`` Secret (``tls.crt``, ``tls.key``, ``ca.crt``), which the agent
mounts as its ``--tls-dir``. When the platform CA is a subordinate (the aws stack's, under an ACM
Private CA root) ``tls.crt`` carries it after the leaf and ``ca.crt`` the CAs up to the root; when
the brokers present another CA's certificates (Amazon MSK's) the agent's Secret also holds that
bundle as ``kafka-ca.crt``. Every pass checks the Secret and issues a successor when the
certificate has used two thirds of its lifetime, when the CA changed or when the identity or the
names it serves did; the agent picks the new files up without a restart. Deleting the cluster
revokes the serial in use.

With ``service`` and ``dnsNames`` the certificate is a serving one for that service of the cluster
(identity ``service/<cluster>.<service>``, server authentication only: it cannot act as a client of
Maestro or Kafka); with ``usage: client`` a client-only one. A service's identity names no
incarnation, so it is issued without waiting for the consumer: a composition may place it before
the workloads that mount it, which then start on it. ``restartOnRenewal`` names the workloads that
read it only when they start: each new certificate rolls those that exist.
"""

from __future__ import annotations

import base64
import datetime
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from trust import authority
from trust.files import KAFKA_CA_FILE
from trust.identity import Identity

KIND = "ClusterIdentity"
SECRET_TYPE = "kubernetes.io/tls"
ANNOTATION_SERIAL = "fleetplane.io/certificate-serial"
ANNOTATION_NOT_AFTER = "fleetplane.io/certificate-not-after"
ANNOTATION_IDENTITY = "fleetplane.io/identity"
DEFAULT_LIFETIME_SECONDS = 24 * 3600
# Below this a certificate would be renewed more often than the provisioner's passes come round.
MIN_LIFETIME_SECONDS = 60


#: the kinds of workload ``restartOnRenewal`` may name (those with a pod template)
RESTARTABLE = {"Deployment": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1"}
#: annotations ``rollout.fleetplane.io/<secret>`` on a pod template hold the serial it runs with
ROLLOUT_PREFIX = "rollout.fleetplane.io/"
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


USAGES = ("server", "client")


@dataclass(frozen=True, slots=True)
class SecretKeys:
    """Where a Secret holds the certificate, its key and the CA: ``kubernetes.io/tls``'s names by
    default; others for a consumer that expects its own (Argo CD's ``argocd-repo-server-mtls``)."""

    certificate: str = "tls.crt"
    key: str = "tls.key"
    ca: tuple[str, ...] = ("ca.crt",)

    @property
    def standard(self) -> bool:
        return self == SecretKeys()


@dataclass(frozen=True, slots=True)
class Request:
    """What a ``ClusterIdentity`` resource asks for."""

    consumer: str
    secret_name: str
    secret_namespace: str
    lifetime: datetime.timedelta
    #: a service of the cluster that serves or connects with this certificate ("" for the agent)
    service: str = ""
    #: what a service's certificate is for: "server" (for ``dns_names``) or "client"
    usage: str = "server"
    dns_names: tuple[str, ...] = ()
    #: (kind, name) of the workloads in the Secret's namespace to roll when a new one is written
    restart: tuple[tuple[str, str], ...] = ()
    #: the Secret's keys for the certificate, its key and the CA (which may go under several keys)
    keys: SecretKeys = SecretKeys()

    def identity(self, incarnation: int | str) -> Identity:
        """Who the certificate names: the agent of this incarnation of the cluster, or its service."""
        if self.service:
            return Identity.service(f"{self.consumer}.{self.service}")
        return Identity.cluster(self.consumer, incarnation)


def problems(obj: Mapping[str, Any]) -> list[str]:
    """What is wrong with a composed ``ClusterIdentity``, each naming the field and the fix."""
    if obj.get("kind") != KIND:
        return [f"an identity object is kind: {KIND}, not {obj.get('kind')!r}"]
    found = []
    if not isinstance(obj.get("consumer"), str) or not obj["consumer"]:
        found.append("object.consumer is missing — name the cluster's Maestro consumer")
    secret = obj.get("secret")
    if not isinstance(secret, Mapping) or not all(
        isinstance(secret.get(k), str) and secret.get(k) for k in ("name", "namespace")
    ):
        found.append("object.secret needs name and namespace — where the agent's Secret goes on the cluster")
    found += _service_problems(obj)
    lifetime = obj.get("lifetimeSeconds", DEFAULT_LIFETIME_SECONDS)
    if not isinstance(lifetime, int) or isinstance(lifetime, bool) or lifetime < MIN_LIFETIME_SECONDS:
        found.append(
            f"object.lifetimeSeconds is {lifetime!r} — give a whole number of seconds, at least "
            f"{MIN_LIFETIME_SECONDS}"
        )
    return found


def _service_problems(obj: Mapping[str, Any]) -> list[str]:
    service, names, restart = obj.get("service"), obj.get("dnsNames"), obj.get("restartOnRenewal", [])
    usage = obj.get("usage", "server")
    found = []
    if service is not None and (not isinstance(service, str) or not _DNS_LABEL.fullmatch(service)):
        found.append(f"object.service is {service!r} — name the service as a DNS label (argocd-repo-server)")
    if service is None and (names is not None or "usage" in obj):
        found.append(
            "object.dnsNames and object.usage need object.service — say which service of the cluster"
        )
    if usage not in USAGES:
        found.append(f"object.usage is {usage!r} — one of {', '.join(USAGES)}")
    if (
        service is not None
        and usage == "server"
        and (not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names))
    ):
        found.append("object.dnsNames must list the names the service answers to (its Service's DNS names)")
    found += _keys_problems(obj.get("keys", {}))
    if not isinstance(restart, list) or not all(
        isinstance(w, Mapping)
        and w.get("kind") in RESTARTABLE
        and isinstance(w.get("name"), str)
        and w["name"]
        for w in restart
    ):
        found.append(
            "object.restartOnRenewal lists {kind, name} of workloads in the Secret's namespace, kind one "
            f"of {', '.join(RESTARTABLE)}"
        )
    return found


def _keys_problems(keys: Any) -> list[str]:
    fine = isinstance(keys, Mapping) and set(keys) <= {"certificate", "key", "ca"}
    fine = fine and all(isinstance(keys[k], str) and keys[k] for k in ("certificate", "key") if k in keys)
    cas = keys.get("ca", ["ca.crt"]) if isinstance(keys, Mapping) else None
    fine = fine and isinstance(cas, list) and bool(cas) and all(isinstance(k, str) and k for k in cas)
    if fine:
        return []
    return ["object.keys is {certificate: NAME, key: NAME, ca: [NAME, ...]} — the Secret's key names"]


def request(obj: Mapping[str, Any]) -> Request:
    wrong = problems(obj)
    if wrong:
        raise ValueError(wrong[0])
    secret, keys = obj["secret"], obj.get("keys") or {}
    return Request(
        consumer=str(obj["consumer"]),
        secret_name=str(secret["name"]),
        secret_namespace=str(secret["namespace"]),
        lifetime=datetime.timedelta(seconds=int(obj.get("lifetimeSeconds", DEFAULT_LIFETIME_SECONDS))),
        service=str(obj.get("service") or ""),
        dns_names=tuple(str(n) for n in obj.get("dnsNames") or ()),
        restart=tuple((str(w["kind"]), str(w["name"])) for w in obj.get("restartOnRenewal") or ()),
        usage=str(obj.get("usage", "server")),
        keys=SecretKeys(
            certificate=str(keys.get("certificate", "tls.crt")),
            key=str(keys.get("key", "tls.key")),
            ca=tuple(str(k) for k in keys.get("ca", ["ca.crt"])),
        ),
    )


def secret_ref(wanted: Request) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": wanted.secret_name, "namespace": wanted.secret_namespace},
    }


def reissue_reason(
    secret: Mapping[str, Any] | None,
    wanted: Request,
    who: Identity,
    ca: authority.CertificateAuthority,
    *,
    kafka_ca: bytes | None = None,
    now: datetime.datetime | None = None,
) -> str | None:
    """Why the Secret needs a new certificate, or None when the one it holds is good for now."""
    if secret is None:
        return "no certificate yet"
    data = secret.get("data") or {}
    try:
        cert_pem = base64.b64decode(data[wanted.keys.certificate])
        cert = x509.load_pem_x509_certificate(cert_pem)
        ca_pems = {base64.b64decode(data[key]) for key in wanted.keys.ca}
    except (KeyError, ValueError, TypeError):
        return "the Secret holds no readable certificate"
    if ca_pems != {ca.bundle_pem} or cert.issuer != ca.cert.subject:
        return "the platform CA changed"
    if cert_pem != cert.public_bytes(serialization.Encoding.PEM) + ca.intermediates_pem:
        return "the certificate's chain changed"
    if _kafka_ca_of(wanted, kafka_ca) != _b64_or_none(data.get(KAFKA_CA_FILE)):
        return "the brokers' CA bundle changed"
    if cert.subject != who.subject():
        return f"the certificate is for another identity ({cert.subject.rfc4514_string()})"
    if _dns_names(cert) != set(wanted.dns_names):
        return f"the names it serves changed (now {', '.join(wanted.dns_names) or 'none'})"
    if authority.renewal_due(cert_pem, now=now):
        return f"renewal due (valid until {cert.not_valid_after_utc.isoformat()})"
    return None


def issued_secret(
    wanted: Request, who: Identity, ca: authority.CertificateAuthority, *, kafka_ca: bytes | None = None
) -> dict[str, Any]:
    """A fresh certificate for ``who`` as the Secret the agent mounts (with ``kafka_ca``, the
    brokers' CAs, when it is the agent's)."""
    if wanted.service and wanted.usage == "server":
        issued = ca.issue(who, lifetime=wanted.lifetime, hosts=wanted.dns_names, server=True, client=False)
    else:
        issued = ca.issue(who, lifetime=wanted.lifetime)
    ref = secret_ref(wanted)
    return {
        **ref,
        "type": SECRET_TYPE if wanted.keys.standard else "Opaque",
        "metadata": {
            **ref["metadata"],
            "labels": {"app.kubernetes.io/name": wanted.service or "maestro-agent"},
            "annotations": {
                ANNOTATION_SERIAL: str(issued.serial),
                ANNOTATION_NOT_AFTER: issued.not_after.isoformat(),
                ANNOTATION_IDENTITY: who.spiffe_id(ca.trust_domain),
            },
        },
        "data": {
            wanted.keys.certificate: _b64(issued.cert_pem + ca.intermediates_pem),
            wanted.keys.key: _b64(issued.key_pem),
            **{key: _b64(ca.bundle_pem) for key in wanted.keys.ca},
            **({KAFKA_CA_FILE: _b64(brokers)} if (brokers := _kafka_ca_of(wanted, kafka_ca)) else {}),
        },
    }


def _kafka_ca_of(wanted: Request, kafka_ca: bytes | None) -> bytes | None:
    """The brokers' CAs for this Secret: only the agent's (a service's certificate never speaks to
    Kafka)."""
    return kafka_ca if kafka_ca and not wanted.service else None


def _b64_or_none(value: Any) -> bytes | None:
    try:
        return base64.b64decode(value) if value else None
    except (ValueError, TypeError):
        return None


def rollout_annotation(wanted: Request) -> str:
    """The pod-template annotation that holds the serial of this Secret's certificate: one per
    Secret, so a workload that reads several rolls when any of them is renewed."""
    return ROLLOUT_PREFIX + wanted.secret_name[:63].rstrip("-.")


def rollout_manager(wanted: Request) -> str:
    """The field manager of that annotation: one per Secret, since a server-side apply drops what
    its manager applied before and no longer sends."""
    return f"fleetplane-rollout-{wanted.secret_name}"[:128]


def restart_patches(wanted: Request, secret: Mapping[str, Any]) -> list[dict[str, Any]]:
    """What rolls each workload of ``restartOnRenewal`` onto the certificate ``secret`` holds: its
    pod template annotated with the serial (a changed template is a new rollout)."""
    serial = ((secret.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_SERIAL, "")
    annotations = {rollout_annotation(wanted): str(serial)}
    return [
        {
            "apiVersion": RESTARTABLE[kind],
            "kind": kind,
            "metadata": {"name": name, "namespace": wanted.secret_namespace},
            "spec": {"template": {"metadata": {"annotations": annotations}}},
        }
        for kind, name in wanted.restart
    ]


def _dns_names(cert: x509.Certificate) -> set[str]:
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return set(names.get_values_for_type(x509.DNSName))


def serial_of(secret: Mapping[str, Any] | None, wanted: Request) -> int | None:
    """The serial of the certificate a Secret holds (what a revocation names)."""
    if secret is None:
        return None
    try:
        data = secret.get("data") or {}
        cert = x509.load_pem_x509_certificate(base64.b64decode(data[wanted.keys.certificate]))
    except (KeyError, ValueError, TypeError):
        return None
    return int(cert.serial_number)


def describe(secret: Mapping[str, Any]) -> str:
    annotations = (secret.get("metadata") or {}).get("annotations") or {}
    return (
        f"certificate {annotations.get(ANNOTATION_IDENTITY, '?')} serial "
        f"{annotations.get(ANNOTATION_SERIAL, '?')}, valid until {annotations.get(ANNOTATION_NOT_AFTER, '?')}"
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
