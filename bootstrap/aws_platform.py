"""The platform on the EKS management cluster: the hub chart, and the Secrets it reads.

The chart (``charts/fleetplane-hub``, docs/install.md) is installed as a Helm release with the
stack's values: the images, Kafka's TLS listener, the database Secret and CA ConfigMap, the
processes' TLS Secrets, the provisioner's region, and the server's Service as a network load
balancer that only the configured source ranges reach. Everything the chart renders (the
Deployments, the migration, RBAC, NetworkPolicies, the CRDs and the default worker-cluster
definition) comes from it alone; this module makes only what the chart expects to exist.

The Maestro server and its migration reach RDS over TLS, verifying its certificate and name
against the RDS CA bundle (``DB_CA_FILE``). The DSN holds no password: it stays a Pulumi secret
and reaches those two containers only through the ``maestro-db`` Secret, as ``PGPASSWORD``.

Every process runs with ``--tls-dir`` on its identity's Secret; each Secret also holds
``kafka-ca.crt``, Amazon's CAs, which verify MSK's brokers (they do not present the platform CA's
certificates). The provisioner's CA Secret holds the root as ``chain.crt`` and that bundle as
``kafka-ca.crt`` too, which it passes on to every worker's agent Secret.

Left out: Argo CD on the hub (the inventory namespace is made, Argo CD's own install fills it), IAM
roles for the service accounts (IRSA) that the provisioner's EKS calls need, and published images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from bootstrap.aws_tls import Pem, PlatformTls
from maestro.transport.connection import KAFKA_CA_FILE
from trust.authority import CHAIN_FILE
from trust.identity import Identity, PrincipalForm

NAMESPACE = "fleetplane"
INVENTORY_NAMESPACE = "argocd"
MAESTRO_PORT = 8090
CHART_DIR = Path(__file__).resolve().parent.parent / "charts" / "fleetplane-hub"
#: the release's name; the chart names the server's Service ``<release>-maestro`` from it
RELEASE = "fleetplane-hub"
SERVICE = f"{RELEASE}-maestro"
#: where the Maestro containers find the CAs that sign RDS's certificate (the DSN's sslrootcert)
DB_CA_DIR = "/etc/fleetplane/postgres-ca"
DB_CA_FILE = f"{DB_CA_DIR}/ca.pem"
#: the chart's default Secret names
DB_SECRET = "maestro-db"
DB_CA_CONFIG_MAP = "maestro-db-ca"
CA_SECRET = "fleetplane-ca"
#: Secret name -> the identity in it (docs/install.md, "TLS Secrets")
IDENTITIES = {
    "maestro-server-tls": Identity.service("maestro-server"),
    "fleetplane-controllers-tls": Identity.source("fleetplane"),
    "fleetplane-provisioner-tls": Identity.admin("provisioner"),
}
SERVER_SECRET = "maestro-server-tls"
#: the in-tree AWS cloud provider makes a network load balancer for the Service; it passes TLS
#: through to the server and keeps the client's address, which loadBalancerSourceRanges filters
LOAD_BALANCER_ANNOTATIONS = {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"}


def server_dns_names(hostname: str | None) -> list[str]:
    """The names the server's certificate is valid for: its Service's, and the one agents dial."""
    names = [
        SERVICE,
        f"{SERVICE}.{NAMESPACE}",
        f"{SERVICE}.{NAMESPACE}.svc",
        f"{SERVICE}.{NAMESPACE}.svc.cluster.local",
    ]
    return names + ([hostname] if hostname else [])


@dataclass(frozen=True)
class PlatformSettings:
    #: ``<registry>/fleetplane-server`` and ``<registry>/fleetplane-hub``, at ``image_tag``
    image_registry: str
    image_tag: str
    dsn: pulumi.Output[str]
    db_password: pulumi.Output[str]
    #: PEM text of the CAs that sign RDS's certificate
    db_ca_bundle: str
    #: MSK's TLS bootstrap brokers
    kafka: pulumi.Input[str]
    #: PEM text of the CAs that sign MSK's broker certificates
    kafka_ca_bundle: str
    aws_region: str
    #: the networks (CIDRs) of the agents that reach the server's load balancer
    source_ranges: list[str]
    tls: PlatformTls


def chart_values(settings: PlatformSettings) -> dict[str, Any]:
    """The hub chart's values (checked against its values.schema.json by the tests)."""
    return {
        "imageTag": settings.image_tag,
        "inventoryNamespace": INVENTORY_NAMESPACE,
        # MSK's configuration cannot set ssl.principal.mapping.rules: it names a client by its
        # certificate's whole subject, so the server's ACLs must too
        "kafka": {"bootstrap": settings.kafka, "principals": PrincipalForm.SUBJECT.value},
        "tls": {"enabled": True},
        "server": {
            "image": {"repository": f"{settings.image_registry}/fleetplane-server"},
            "port": MAESTRO_PORT,
            "tlsSecret": SERVER_SECRET,
            "service": {
                "type": "LoadBalancer",
                "annotations": LOAD_BALANCER_ANNOTATIONS,
                "loadBalancerSourceRanges": settings.source_ranges,
            },
            "database": {"secretName": DB_SECRET, "caConfigMap": DB_CA_CONFIG_MAP},
        },
        "controllers": {
            "image": {"repository": f"{settings.image_registry}/fleetplane-hub"},
            "tlsSecret": "fleetplane-controllers-tls",
        },
        "provisioner": {
            "image": {"repository": f"{settings.image_registry}/fleetplane-hub"},
            "tlsSecret": "fleetplane-provisioner-tls",
            "caSecret": CA_SECRET,
            "awsRegion": settings.aws_region,
        },
        "networkPolicy": {
            # MSK's TLS listener
            "kafka": {"ports": [9094]},
            "serverIngressFrom": [{"ipBlock": {"cidr": cidr}} for cidr in settings.source_ranges],
        },
    }


def install(provider: k8s.Provider, settings: PlatformSettings) -> k8s.helm.v3.Release:
    """The namespaces, the Secrets and ConfigMap the chart reads, and the chart's release."""
    opts = pulumi.ResourceOptions(provider=provider)
    namespace = k8s.core.v1.Namespace("fleetplane", metadata={"name": NAMESPACE}, opts=opts)
    inventory = k8s.core.v1.Namespace("inventory", metadata={"name": INVENTORY_NAMESPACE}, opts=opts)
    in_namespace = pulumi.ResourceOptions(provider=provider, depends_on=[namespace])
    inputs: list[pulumi.Resource] = [
        k8s.core.v1.Secret(
            DB_SECRET,
            metadata={"name": DB_SECRET, "namespace": NAMESPACE},
            string_data={"dsn": settings.dsn, "password": settings.db_password},
            opts=in_namespace,
        ),
        k8s.core.v1.ConfigMap(
            DB_CA_CONFIG_MAP,
            metadata={"name": DB_CA_CONFIG_MAP, "namespace": NAMESPACE},
            data={"ca.pem": settings.db_ca_bundle},
            opts=in_namespace,
        ),
        _secret(
            CA_SECRET,
            "Opaque",
            {
                "ca.crt": settings.tls.ca_cert,
                "ca.key": settings.tls.ca_key,
                # the provisioner gives both to every worker's agent: the root, so the agent's
                # trust ends at it and its tls.crt carries the platform CA for MSK, which trusts
                # only the root; and Amazon's CAs, which MSK's brokers present
                CHAIN_FILE: settings.tls.root_cert,
                KAFKA_CA_FILE: settings.kafka_ca_bundle,
            },
            in_namespace,
        ),
    ]
    for name, pem in settings.tls.identities.items():
        inputs.append(_tls_secret(name, pem, settings.kafka_ca_bundle, in_namespace))
    return k8s.helm.v3.Release(
        "fleetplane-hub",
        name=RELEASE,
        chart=str(CHART_DIR),
        namespace=NAMESPACE,
        values=chart_values(settings),
        # the migration Job and the rollouts finish before the stack says it is up
        atomic=True,
        timeout=900,
        opts=pulumi.ResourceOptions(provider=provider, depends_on=[namespace, inventory, *inputs]),
    )


def _tls_secret(name: str, pem: Pem, kafka_ca: str, opts: pulumi.ResourceOptions) -> k8s.core.v1.Secret:
    data: dict[str, pulumi.Input[str]] = {
        "ca.crt": pem.ca,
        "tls.crt": pem.cert,
        "tls.key": pem.key,
        KAFKA_CA_FILE: kafka_ca,
    }
    return _secret(name, "kubernetes.io/tls", data, opts)


def _secret(
    name: str, kind: str, data: dict[str, pulumi.Input[str]], opts: pulumi.ResourceOptions
) -> k8s.core.v1.Secret:
    return k8s.core.v1.Secret(
        name,
        metadata={"name": name, "namespace": NAMESPACE},
        type=kind,
        # secret as a whole: the private keys are, and a Secret is no place to tell them apart
        string_data=pulumi.Output.secret(data),
        opts=opts,
    )
