"""The platform on the EKS management cluster, as Kubernetes resources of the aws stack.

The same processes the local stack runs (``local_components``), here as Deployments of one image:
the Maestro server (its schema migrated first, by an init container) behind a ClusterIP Service,
the provisioner (serving the ``aws`` provider in the stack's region) and the hub controllers.
The Maestro server and its migration reach RDS over TLS, verifying its certificate and name
against the RDS CA bundle mounted from a ConfigMap (``DB_CA_FILE``). The DSN holds no password:
the password stays a Pulumi secret and reaches those two containers only through a Secret, as
``PGPASSWORD``. The provisioner's CRDs and the default ``worker-cluster`` definition and
Composition are applied from the same files ``fleetplane provisioner install`` applies.

Left out: Argo CD's CRDs on the hub (Argo CD's own install brings them), IAM roles for the
service account (IRSA) that the provisioner's EKS calls need, and a published image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from provisioner import api, catalog

NAMESPACE = "fleetplane"
INVENTORY_NAMESPACE = "argocd"
MAESTRO_PORT = 8090
HEALTH_PORT = 8080
SERVICE_ACCOUNT = "fleetplane"
#: where the Maestro containers find the CAs that sign RDS's certificate (the DSN's sslrootcert)
DB_CA_DIR = "/etc/fleetplane/postgres-ca"
DB_CA_FILE = f"{DB_CA_DIR}/ca.pem"


@dataclass(frozen=True)
class PlatformSettings:
    image: str
    dsn: pulumi.Output[str]
    db_password: pulumi.Output[str]
    #: PEM text of the CAs that sign RDS's certificate
    db_ca_bundle: str
    kafka: pulumi.Input[str]
    aws_region: str


def install(provider: k8s.Provider, settings: PlatformSettings) -> pulumi.Output[str]:
    """Create everything; returns the Maestro server's in-cluster gRPC address."""
    opts = pulumi.ResourceOptions(provider=provider)
    namespace = k8s.core.v1.Namespace("fleetplane", metadata={"name": NAMESPACE}, opts=opts)
    k8s.core.v1.Namespace("inventory", metadata={"name": INVENTORY_NAMESPACE}, opts=opts)
    in_namespace = pulumi.ResourceOptions(provider=provider, depends_on=[namespace])
    k8s.core.v1.Secret(
        "maestro-db",
        metadata={"name": "maestro-db", "namespace": NAMESPACE},
        string_data={"dsn": settings.dsn, "password": settings.db_password},
        opts=in_namespace,
    )
    k8s.core.v1.ConfigMap(
        "maestro-db-ca",
        metadata={"name": "maestro-db-ca", "namespace": NAMESPACE},
        data={"ca.pem": settings.db_ca_bundle},
        opts=in_namespace,
    )
    k8s.core.v1.ConfigMap(
        "kafka",
        metadata={"name": "kafka", "namespace": NAMESPACE},
        data={"bootstrap": settings.kafka},
        opts=in_namespace,
    )
    _rbac(in_namespace)
    crds = k8s.yaml.v2.ConfigGroup("platform-crds", objs=api.platform_crds(), opts=opts)
    folder = catalog.COMPOSITIONS_DIR / "worker-cluster"
    k8s.yaml.v2.ConfigGroup(
        "worker-cluster",
        objs=catalog.load_documents(folder / "definition.yaml")
        + catalog.load_documents(folder / "composition.yaml"),
        opts=pulumi.ResourceOptions(provider=provider, depends_on=[crds]),
    )

    address = f"maestro.{NAMESPACE}.svc:{MAESTRO_PORT}"
    db = {"name": "MAESTRO_DSN", "valueFrom": {"secretKeyRef": {"name": "maestro-db", "key": "dsn"}}}
    # libpq reads the password from PGPASSWORD, so no DSN carries it. Not a passfile mounted from
    # the Secret: libpq ignores a passfile its group may read (what an fsGroup makes of it), and
    # a root-only one is unreadable to an image that runs as another user.
    db_password = {
        "name": "PGPASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "maestro-db", "key": "password"}},
    }
    kafka = {
        "name": "KAFKA_BOOTSTRAP",
        "valueFrom": {"configMapKeyRef": {"name": "kafka", "key": "bootstrap"}},
    }
    # The DSN reaches `maestro server` and `maestro migrate` through MAESTRO_DSN, the variable
    # their --dsn reads: as a flag it would sit in every process listing of the pod.
    _deployment(
        "maestro",
        settings.image,
        [
            "maestro",
            "server",
            "--kafka",
            "$(KAFKA_BOOTSTRAP)",
            # MSK is reached over plaintext inside the VPC: no certificates are issued for it here
            # (the server and agents secure Kafka with --tls-dir where the broker has TLS and ACLs)
            "--insecure",
            # the default, 127.0.0.1, would hide the server from its Service and its probe
            "--host",
            "0.0.0.0",
            "--port",
            str(MAESTRO_PORT),
            "--server-id",
            "$(POD_NAME)",
        ],
        [
            db,
            db_password,
            kafka,
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        in_namespace,
        replicas=2,
        init=["maestro", "migrate"],
        port=MAESTRO_PORT,
        config_maps={"maestro-db-ca": DB_CA_DIR},
    )
    k8s.core.v1.Service(
        "maestro",
        metadata={"name": "maestro", "namespace": NAMESPACE},
        spec={"selector": {"app": "maestro"}, "ports": [{"name": "grpc", "port": MAESTRO_PORT}]},
        opts=in_namespace,
    )
    # the kubelet probes the pod's address
    health = ["--health-host", "0.0.0.0", "--health-port", str(HEALTH_PORT)]
    _deployment(
        "provisioner",
        settings.image,
        [
            "provisioner",
            "run",
            "--maestro",
            address,
            "--kafka",
            "$(KAFKA_BOOTSTRAP)",
            "--aws-region",
            settings.aws_region,
            "--inventory-namespace",
            INVENTORY_NAMESPACE,
            *health,
        ],
        [kafka],
        in_namespace,
        # one leads, the other stands by: they elect the leader on a Lease in this namespace
        replicas=2,
    )
    _deployment(
        "controllers",
        settings.image,
        [
            "controllers",
            "run",
            "--maestro",
            address,
            "--inventory-namespace",
            INVENTORY_NAMESPACE,
            *health,
        ],
        [],
        in_namespace,
        replicas=2,
    )
    return pulumi.Output.from_input(address)


def _rbac(opts: pulumi.ResourceOptions) -> None:
    """The operators watch and write the platform's kinds, Argo CD's, Secrets and CRDs (the
    provisioner generates claim and composite CRDs at run time), cluster-wide, and their replicas
    elect a leader on Leases (coordination.k8s.io)."""
    k8s.core.v1.ServiceAccount(
        "fleetplane", metadata={"name": SERVICE_ACCOUNT, "namespace": NAMESPACE}, opts=opts
    )
    groups = [
        "fleetplane.io",
        "platform.fleetplane.io",
        "argoproj.io",
        "apiextensions.k8s.io",
        "coordination.k8s.io",
    ]
    # Plain dicts in the API's shape; the SDK's TypedDicts would only restate them.
    rules: Any = [
        {"apiGroups": groups, "resources": ["*"], "verbs": ["*"]},
        {"apiGroups": [""], "resources": ["secrets", "namespaces", "events", "configmaps"], "verbs": ["*"]},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
    ]
    role = k8s.rbac.v1.ClusterRole("fleetplane", metadata={"name": "fleetplane"}, rules=rules, opts=opts)
    role_ref: Any = {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role.metadata["name"],
    }
    k8s.rbac.v1.ClusterRoleBinding(
        "fleetplane",
        metadata={"name": "fleetplane"},
        role_ref=role_ref,
        subjects=[{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": NAMESPACE}],
        opts=opts,
    )


def _deployment(
    name: str,
    image: str,
    args: list[str],
    env: list[dict[str, Any]],
    opts: pulumi.ResourceOptions,
    *,
    replicas: int = 1,
    init: list[str] | None = None,
    port: int | None = None,
    config_maps: dict[str, str] | None = None,
) -> k8s.apps.v1.Deployment:
    """``config_maps``: ConfigMap name -> the folder every container of the pod reads it in."""
    mounts = [{"name": cm, "mountPath": path, "readOnly": True} for cm, path in (config_maps or {}).items()]
    container: dict[str, Any] = {
        "name": name,
        "image": image,
        "command": ["fleetplane"],
        "args": [*args, "--log-level", "info"],
        "env": env,
    }
    if mounts:
        container["volumeMounts"] = mounts
    if port is None:
        container["ports"] = [{"name": "health", "containerPort": HEALTH_PORT}]
        # Ready: kopf watches what the operator serves and its dependencies answer; live: the
        # event loop answers.
        container["readinessProbe"] = {
            "httpGet": {"path": "/readyz", "port": HEALTH_PORT},
            "periodSeconds": 10,
            "timeoutSeconds": 2,
        }
        container["livenessProbe"] = {
            "httpGet": {"path": "/healthz", "port": HEALTH_PORT},
            "initialDelaySeconds": 30,
            "periodSeconds": 20,
        }
    else:
        container["ports"] = [{"name": "grpc", "containerPort": port}]
        # The server reports SERVING on gRPC health once it listens (EKS 1.28+ probes gRPC).
        container["readinessProbe"] = {"grpc": {"port": port}, "periodSeconds": 10}
    pod: dict[str, Any] = {"serviceAccountName": SERVICE_ACCOUNT, "containers": [container]}
    if mounts:
        pod["volumes"] = [{"name": cm, "configMap": {"name": cm}} for cm in config_maps or {}]
    if init:
        migrate: dict[str, Any] = {
            "name": "migrate",
            "image": image,
            "command": ["fleetplane"],
            "args": init,
            "env": env,
        }
        if mounts:
            migrate["volumeMounts"] = mounts
        pod["initContainers"] = [migrate]
    spec: Any = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": pod},
    }
    return k8s.apps.v1.Deployment(name, metadata={"name": name, "namespace": NAMESPACE}, spec=spec, opts=opts)
