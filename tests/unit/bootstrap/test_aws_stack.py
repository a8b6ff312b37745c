"""The aws stack against Pulumi's unit-test mocks: what it would create, how it is wired, its outputs.

Cases: the VPC has a public and a private subnet per zone, routed through the internet gateway and
the NAT gateway; the EKS cluster's nodes live in the private subnets without public addresses;
RDS and MSK sit in the private subnets behind security groups that let in only the cluster's
nodes, on their one port (MSK's TLS listener); RDS is private and encrypted and its parameter
group forces TLS; MSK serves TLS only, authenticates clients by certificates of the stack's ACM
Private CA and enforces ACLs; the platform CA is that CA's subordinate (path length 0) and signs
the processes' identities, whose Secrets also carry the CAs MSK's brokers are verified against;
the DB password and every private key stay secrets, appear in no plain input or output and in no
DSN; the DSN asks for verify-full against the RDS CA bundle; the platform is the hub chart's Helm
release, with TLS on, MSK's TLS brokers, the database Secret and CA ConfigMap, and the server's
Service a load balancer reached from the configured networks only, and its values pass the
chart's schema; nothing runs with ``--insecure`` and no hand-written Deployment duplicates the
chart; every Kubernetes object goes to the provider made from the EKS kubeconfig; the stack's
outputs carry the mocked endpoints; each wrong config value is refused naming its key, a missing,
unreadable or non-certificate CA bundle (RDS's or MSK's) too.

The mocks answer as AWS would (ids, the RDS address, MSK's brokers, the private CA's certificates,
the availability zones), as the TLS provider would (keys, requests, certificates) and, for
``eks:index:Cluster`` (a multi-language component, registered as a remote resource), with the
component's outputs the program reads: ``kubeconfigJson`` and ``nodeSecurityGroupId``.

AWS itself is never called: these tests are all that checks the stack.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import jsonschema
import pulumi
import pytest
import yaml
from psycopg.conninfo import conninfo_to_dict
from pulumi.runtime import rpc

from bootstrap import aws_platform, aws_stack, aws_tls
from bootstrap.aws_platform import CHART_DIR
from bootstrap.stack_config import ConfigError, Reader
from localinfra import pki

#: has characters a URI must quote, to show the DSN still carries it intact
PASSWORD = "correct:horse#battery%staple"
ZONES = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
DB_ADDRESS = "maestro.abc123.eu-west-1.rds.amazonaws.com"
BROKERS = (
    "b-1.fleetplane.kafka.eu-west-1.amazonaws.com:9094,b-2.fleetplane.kafka.eu-west-1.amazonaws.com:9094"
)
RANGES = "203.0.113.0/24,198.51.100.0/24"
HOSTNAME = "maestro.fleet.example.com"
ROOT_ARN = "arn:aws:acm-pca:eu-west-1:111122223333:certificate-authority/root"
NODES_SG = "sg-0nodes"
KUBECONFIG = json.dumps({"apiVersion": "v1", "kind": "Config", "clusters": [{"name": "management"}]})
PRIVATE_SUBNETS = ["private-0-id", "private-1-id"]
T = TypeVar("T")


class Recorder(pulumi.runtime.Mocks):
    """Answers as AWS and the EKS component would, and records every registration."""

    def __init__(self, zones: list[str]) -> None:
        self.zones = zones
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(args)
        state = dict(args.inputs)
        if args.typ == "eks:index:Cluster":
            state.update(kubeconfigJson=KUBECONFIG, nodeSecurityGroupId=NODES_SG)
        elif args.typ == "aws:rds/instance:Instance":
            state.update(address=DB_ADDRESS, endpoint=f"{DB_ADDRESS}:5432")
        elif args.typ == "aws:msk/cluster:Cluster":
            state.update(bootstrapBrokersTls=BROKERS)
        elif args.typ == "aws:msk/configuration:Configuration":
            state.update(arn=f"arn:{args.name}", latestRevision=1)
        elif args.typ == "aws:acmpca/certificateAuthority:CertificateAuthority":
            state.update(arn=ROOT_ARN, certificateSigningRequest=f"CSR {args.name}")
        elif args.typ == "aws:acmpca/certificate:Certificate":
            state.update(certificate=f"CERT {args.name}", certificateChain="CERT root-chain")
        elif args.typ == "tls:index/privateKey:PrivateKey":
            state.update(privateKeyPem=f"KEY {args.name}")
        elif args.typ == "tls:index/certRequest:CertRequest":
            state.update(certRequestPem=f"CSR {args.name}")
        elif args.typ == "tls:index/locallySignedCert:LocallySignedCert":
            state.update(certPem=f"CERT {args.name}")
        elif args.typ == "aws:rds/subnetGroup:SubnetGroup":
            # the provider's auto-naming, which mocks do not do: a name plus a random suffix
            state.setdefault("name", f"{args.name}-5e7a2b1")
        elif args.typ == "aws:rds/parameterGroup:ParameterGroup":
            state.setdefault("name", f"{args.name}-8c41d0e")
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """The invokes the program makes, with no check failures."""
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            zone_ids = [f"euw1-az{i}" for i, _ in enumerate(self.zones)]
            return {"names": self.zones, "zoneIds": zone_ids}, []
        if args.token == "aws:index/getRegion:getRegion":
            return {"region": "eu-west-1", "id": "eu-west-1", "endpoint": "", "description": ""}, []
        raise NotImplementedError(args.token)

    def of_type(self, typ: str) -> list[pulumi.runtime.MockResourceArgs]:
        return [r for r in self.resources if r.typ == typ]

    def named(self, typ: str, name: str) -> dict[str, Any]:
        (found,) = [r for r in self.of_type(typ) if r.name == name]
        return dict(found.inputs)


def ca_bundle(folder: Path) -> str:
    """A PEM bundle standing in for RDS's: a CA certificate."""
    return pki.ensure_ca(folder).cert.read_text()


def settle(awaitable: Awaitable[T]) -> T:
    """Waits on the loop ``pulumi.runtime.test`` ran the program on."""
    return asyncio.get_event_loop().run_until_complete(awaitable)


def unwrap_secret(value: dict[str, Any]) -> Any:
    """The value inside what Pulumi sends a provider for a secret, refusing anything else."""
    assert value.get(rpc._special_sig_key) == rpc._special_secret_sig, f"not a secret: {value!r}"
    return value["value"]


def plain_strings(value: Any) -> Iterator[str]:
    """Every string of a registration's inputs that Pulumi does not send as a secret."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) != rpc._special_secret_sig:
            for item in value.values():
                yield from plain_strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from plain_strings(item)
    elif isinstance(value, str):
        yield value


@dataclass(frozen=True)
class Deployed:
    mocks: Recorder
    #: each ``pulumi.export``, resolved, and whether Pulumi keeps it secret
    exports: dict[str, tuple[Any, bool]]
    dsn: str
    password_is_secret: bool
    ca_bundle: str
    kafka_ca_bundle: str


CONFIG = aws_stack.AwsConfig.read(Reader({"agentSourceRanges": RANGES, "maestroHostname": HOSTNAME}.get))


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Deployed:
    mocks = Recorder(ZONES)
    pulumi.runtime.set_mocks(mocks, project="fleetplane", stack="aws", preview=False)
    made: dict[str, aws_stack.Created] = {}
    bundle = ca_bundle(tmp_path_factory.mktemp("rds-ca"))
    kafka_bundle = ca_bundle(tmp_path_factory.mktemp("amazon-ca"))

    @pulumi.runtime.test
    def deploy() -> pulumi.Output[str]:
        made["stack"] = created = aws_stack.run(CONFIG, pulumi.Output.secret(PASSWORD), bundle, kafka_bundle)
        return created.maestro_address

    deploy()
    stack = made["stack"]
    root = pulumi.runtime.get_root_resource()
    assert root is not None
    exports = {}
    for name, value in root.outputs.items():  # type: ignore[attr-defined]
        output = pulumi.Output.from_input(value)
        exports[name] = (settle(output.future()), bool(settle(output.is_secret())))
    return Deployed(
        mocks=mocks,
        exports=exports,
        dsn=str(settle(stack.dsn.future())),
        password_is_secret=settle(stack.db.password.is_secret()),
        ca_bundle=bundle,
        kafka_ca_bundle=kafka_bundle,
    )


# --- AWS: network, cluster, data services ---------------------------------------------------------


def test_the_vpc_has_a_public_and_a_private_subnet_per_zone(deployed: Deployed) -> None:
    mocks = deployed.mocks
    assert mocks.named("aws:ec2/vpc:Vpc", "vpc")["cidrBlock"] == "10.40.0.0/16"
    subnets = {r.name: r.inputs for r in mocks.of_type("aws:ec2/subnet:Subnet")}
    assert sorted(subnets) == ["private-0", "private-1", "public-0", "public-1"]
    assert {s["vpcId"] for s in subnets.values()} == {"vpc-id"}
    for kind in ("public", "private"):
        assert [subnets[f"{kind}-{i}"]["availabilityZone"] for i in (0, 1)] == ZONES[:2]
    assert subnets["public-0"]["mapPublicIpOnLaunch"] is True
    assert not subnets["private-0"].get("mapPublicIpOnLaunch")


def test_public_subnets_route_through_the_internet_gateway_and_private_ones_through_nat(
    deployed: Deployed,
) -> None:
    mocks = deployed.mocks
    table = "aws:ec2/routeTable:RouteTable"
    assert mocks.named(table, "public")["routes"] == [{"cidrBlock": "0.0.0.0/0", "gatewayId": "igw-id"}]
    assert mocks.named(table, "private")["routes"] == [{"cidrBlock": "0.0.0.0/0", "natGatewayId": "nat-id"}]
    nat = mocks.named("aws:ec2/natGateway:NatGateway", "nat")
    assert nat["subnetId"] == "public-0-id" and nat["allocationId"] == "nat-id"
    associations = {
        r.inputs["subnetId"]: r.inputs["routeTableId"]
        for r in mocks.of_type("aws:ec2/routeTableAssociation:RouteTableAssociation")
    }
    assert associations == {
        "public-0-id": "public-id",
        "public-1-id": "public-id",
        "private-0-id": "private-id",
        "private-1-id": "private-id",
    }


def test_eks_nodes_are_private(deployed: Deployed) -> None:
    cluster = deployed.mocks.named("eks:index:Cluster", "management")
    assert cluster["vpcId"] == "vpc-id"
    assert cluster["privateSubnetIds"] == PRIVATE_SUBNETS
    assert cluster["publicSubnetIds"] == ["public-0-id", "public-1-id"]
    assert cluster["nodeAssociatePublicIpAddress"] is False
    assert cluster["instanceType"] == "m6i.large" and cluster["version"] == "1.33"
    assert cluster["desiredCapacity"] == cluster["minSize"] == 2


@pytest.mark.parametrize(("group", "port"), [("postgres", 5432), ("kafka", 9094)])
def test_data_services_let_in_only_the_nodes_on_their_port(deployed: Deployed, group: str, port: int) -> None:
    (ingress,) = deployed.mocks.named("aws:ec2/securityGroup:SecurityGroup", group)["ingress"]
    assert ingress == {"protocol": "tcp", "fromPort": port, "toPort": port, "securityGroups": [NODES_SG]}


def test_rds_is_private_encrypted_and_in_the_private_subnets(deployed: Deployed) -> None:
    mocks = deployed.mocks
    db = mocks.named("aws:rds/instance:Instance", "maestro")
    assert db["engine"] == "postgres"
    assert db["publiclyAccessible"] is False and db["storageEncrypted"] is True
    assert db["vpcSecurityGroupIds"] == ["postgres-id"]
    assert db["dbSubnetGroupName"] == "maestro-5e7a2b1"
    assert mocks.named("aws:rds/subnetGroup:SubnetGroup", "maestro")["subnetIds"] == PRIVATE_SUBNETS


def test_rds_refuses_connections_without_tls(deployed: Deployed) -> None:
    mocks = deployed.mocks
    group = mocks.named("aws:rds/parameterGroup:ParameterGroup", "maestro")
    assert group["family"] == "postgres17"
    assert {p["name"]: p["value"] for p in group["parameters"]} == {
        "rds.force_ssl": "1",
        "password_encryption": "scram-sha-256",
    }
    assert mocks.named("aws:rds/instance:Instance", "maestro")["parameterGroupName"] == "maestro-8c41d0e"


def test_msk_is_in_the_private_subnets_with_a_broker_per_zone(deployed: Deployed) -> None:
    kafka = deployed.mocks.named("aws:msk/cluster:Cluster", "kafka")
    assert kafka["brokerNodeGroupInfo"]["clientSubnets"] == PRIVATE_SUBNETS
    assert kafka["brokerNodeGroupInfo"]["securityGroups"] == ["kafka-id"]
    assert kafka["numberOfBrokerNodes"] == 2 and kafka["kafkaVersion"] == "3.8.x"
    assert kafka["encryptionInfo"]["encryptionInTransit"]["inCluster"] is True


# --- secrets ---------------------------------------------------------------------------------------


def test_the_password_stays_secret_and_the_dsn_verifies_rds(deployed: Deployed) -> None:
    assert deployed.password_is_secret
    db = deployed.mocks.named("aws:rds/instance:Instance", "maestro")
    assert unwrap_secret(db["password"]) == PASSWORD
    # no password: libpq reads it from PGPASSWORD; RDS's certificate and name are verified
    assert conninfo_to_dict(deployed.dsn) == {
        "user": "maestro",
        "host": DB_ADDRESS,
        "port": "5432",
        "dbname": "maestro",
        "sslmode": "verify-full",
        "sslrootcert": aws_platform.DB_CA_FILE,
    }
    data = unwrap_secret(deployed.mocks.named("kubernetes:core/v1:Secret", "maestro-db")["stringData"])
    assert data == {"dsn": deployed.dsn, "password": PASSWORD}


def test_no_plain_input_or_output_holds_the_password(deployed: Deployed) -> None:
    leaked = [
        (r.typ, r.name)
        for r in deployed.mocks.resources
        for text in plain_strings(r.inputs)
        if "horse" in text  # the password, quoted or not
    ]
    assert leaked == []
    plain_exports = [value for value, secret in deployed.exports.values() if not secret]
    assert not any("horse" in text for text in plain_strings(plain_exports))


# --- Kubernetes: provider, objects, commands -------------------------------------------------------


def test_every_kubernetes_object_goes_to_the_eks_cluster(deployed: Deployed) -> None:
    mocks = deployed.mocks
    provider = mocks.named("pulumi:providers:kubernetes", "management")
    kubeconfig = provider["kubeconfig"]
    if isinstance(kubeconfig, dict):  # the SDK may send it as a secret
        kubeconfig = unwrap_secret(kubeconfig)
    assert kubeconfig == KUBECONFIG
    objects = [r for r in mocks.resources if r.typ.startswith("kubernetes:")]
    kinds = {r.typ for r in objects}
    assert {"kubernetes:core/v1:Secret", "kubernetes:helm.sh/v3:Release"} <= kinds
    # not one to the default provider, which would be whatever cluster the operator's kubeconfig names
    strays = [
        (r.typ, r.name)
        for r in objects
        if "pulumi:providers:kubernetes::management::" not in (r.provider or "")
    ]
    assert strays == []


def release(mocks: Recorder) -> dict[str, Any]:
    return mocks.named("kubernetes:helm.sh/v3:Release", "fleetplane-hub")


def test_the_platform_is_the_hub_charts_release(deployed: Deployed) -> None:
    mocks = deployed.mocks
    hub = release(mocks)
    assert Path(hub["chart"]) == CHART_DIR and (CHART_DIR / "Chart.yaml").is_file()
    assert hub["name"] == "fleetplane-hub" and hub["namespace"] == "fleetplane"
    values = hub["values"]
    assert values["imageTag"] == "0.1.0"
    assert values["server"]["image"] == {"repository": "ghcr.io/fleetplane/fleetplane-server"}
    assert values["controllers"]["image"] == values["provisioner"]["image"]
    assert values["provisioner"]["image"] == {"repository": "ghcr.io/fleetplane/fleetplane-hub"}
    assert values["kafka"] == {"bootstrap": BROKERS, "principals": "subject"}
    assert values["provisioner"]["awsRegion"] == "eu-west-1"
    assert values["server"]["database"] == {"secretName": "maestro-db", "caConfigMap": "maestro-db-ca"}
    assert values["networkPolicy"]["kafka"] == {"ports": [9094]}
    # one source of the platform's manifests: the chart's Deployments, CRDs and composition
    hand_made = [
        (r.typ, r.name)
        for r in mocks.resources
        if r.typ.startswith(("kubernetes:apps/", "kubernetes:rbac", "kubernetes:yaml/"))
    ]
    assert hand_made == []


def test_the_values_pass_the_charts_schema(deployed: Deployed) -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    defaults = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    jsonschema.validate(merge(defaults, release(deployed.mocks)["values"]), schema)


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """Values as Helm merges them: maps key by key, anything else replaced."""
    merged = dict(base)
    for key, value in over.items():
        old = merged.get(key)
        merged[key] = merge(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return merged


def test_nothing_runs_insecure(deployed: Deployed) -> None:
    assert release(deployed.mocks)["values"]["tls"] == {"enabled": True}
    insecure = [
        (r.typ, r.name)
        for r in deployed.mocks.resources
        for text in plain_strings(r.inputs)
        if "insecure" in text
    ]
    assert insecure == []


def test_the_servers_load_balancer_lets_in_only_the_configured_networks(deployed: Deployed) -> None:
    server = release(deployed.mocks)["values"]["server"]
    assert server["service"] == {
        "type": "LoadBalancer",
        "annotations": {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"},
        "loadBalancerSourceRanges": RANGES.split(","),
    }
    assert server["port"] == 8090 and server["tlsSecret"] == "maestro-server-tls"
    assert release(deployed.mocks)["values"]["networkPolicy"]["serverIngressFrom"] == [
        {"ipBlock": {"cidr": cidr}} for cidr in RANGES.split(",")
    ]
    # no security group of the stack's own opens anything to the whole internet
    for group in deployed.mocks.of_type("aws:ec2/securityGroup:SecurityGroup"):
        for rule in group.inputs["ingress"]:
            assert "0.0.0.0/0" not in rule.get("cidrBlocks", []), group.name


def test_msk_serves_tls_only_to_clients_of_the_private_ca(deployed: Deployed) -> None:
    mocks = deployed.mocks
    kafka = mocks.named("aws:msk/cluster:Cluster", "kafka")
    assert kafka["encryptionInfo"]["encryptionInTransit"] == {"clientBroker": "TLS", "inCluster": True}
    assert kafka["clientAuthentication"] == {
        "tls": {"certificateAuthorityArns": [ROOT_ARN]},
        "unauthenticated": False,
    }
    assert "sasl" not in kafka["clientAuthentication"]


def test_msk_enforces_the_acls(deployed: Deployed) -> None:
    mocks = deployed.mocks
    config = mocks.named("aws:msk/configuration:Configuration", "kafka")
    assert "allow.everyone.if.no.acl.found=false" in config["serverProperties"].splitlines()
    assert config["kafkaVersions"] == ["3.8.x"]
    kafka = mocks.named("aws:msk/cluster:Cluster", "kafka")
    assert kafka["configurationInfo"] == {"arn": "arn:kafka", "revision": 1}


def test_the_platform_ca_is_a_subordinate_of_the_private_ca(deployed: Deployed) -> None:
    mocks = deployed.mocks
    root = mocks.named("aws:acmpca/certificateAuthority:CertificateAuthority", "platform-root")
    assert root["type"] == "ROOT"
    assert root["certificateAuthorityConfiguration"]["keyAlgorithm"] == "EC_prime256v1"
    certificates = {r.name: r for r in mocks.of_type("aws:acmpca/certificate:Certificate")}
    assert certificates["platform-root"].inputs["templateArn"] == aws_tls.ROOT_TEMPLATE
    subordinate = certificates["platform-ca"].inputs
    assert subordinate == {
        "certificateAuthorityArn": ROOT_ARN,
        # the request of the key the stack keeps: the provisioner signs agents' certificates with it
        "certificateSigningRequest": "CSR platform-ca",
        "signingAlgorithm": "SHA256WITHECDSA",
        "templateArn": "arn:aws:acm-pca:::template/SubordinateCACertificate_PathLen0/V1",
        "validity": {"type": "YEARS", "value": "5"},
    }
    # the root's own certificate, installed: it issues nothing before
    activation = mocks.named(
        "aws:acmpca/certificateAuthorityCertificate:CertificateAuthorityCertificate", "platform-root"
    )
    assert activation["certificate"] == "CERT platform-root"


def tls_secret(mocks: Recorder, name: str) -> tuple[str, dict[str, str]]:
    secret = mocks.named("kubernetes:core/v1:Secret", name)
    assert secret["metadata"] == {"name": name, "namespace": "fleetplane"}
    return secret["type"], unwrap_secret(secret["stringData"])


IDENTITIES = {
    "maestro-server-tls": ("service", "maestro-server"),
    "fleetplane-controllers-tls": ("source", "fleetplane"),
    "fleetplane-provisioner-tls": ("admin", "provisioner"),
}


@pytest.mark.parametrize("secret", IDENTITIES)
def test_each_process_has_its_identity_and_the_brokers_cas(deployed: Deployed, secret: str) -> None:
    mocks = deployed.mocks
    kind, name = IDENTITIES[secret]
    typ, data = tls_secret(mocks, secret)
    assert typ == "kubernetes.io/tls"
    assert data == {
        "ca.crt": "CERT platform-ca\nCERT platform-root\n",
        "tls.crt": f"CERT {secret}\nCERT platform-ca\n",
        "tls.key": f"KEY {secret}",
        "kafka-ca.crt": deployed.kafka_ca_bundle,
    }
    request = mocks.named("tls:index/certRequest:CertRequest", secret)
    assert request["subject"] == {
        "organization": "fleetplane",
        "organizationalUnit": kind,
        "commonName": name,
    }
    assert request["uris"] == [f"spiffe://fleetplane.local/{kind}/{name}"]
    signed = mocks.named("tls:index/locallySignedCert:LocallySignedCert", secret)
    assert signed["caCertPem"] == "CERT platform-ca" and signed["certRequestPem"] == f"CSR {secret}"
    assert unwrap_secret(signed["caPrivateKeyPem"]) == "KEY platform-ca"
    assert ("server_auth" in signed["allowedUses"]) == (kind == "service")
    assert "client_auth" in signed["allowedUses"]


def test_the_servers_certificate_names_its_service_and_the_agents_hostname(deployed: Deployed) -> None:
    request = deployed.mocks.named("tls:index/certRequest:CertRequest", "maestro-server-tls")
    assert request["dnsNames"] == [
        "fleetplane-hub-maestro",
        "fleetplane-hub-maestro.fleetplane",
        "fleetplane-hub-maestro.fleetplane.svc",
        "fleetplane-hub-maestro.fleetplane.svc.cluster.local",
        HOSTNAME,
    ]
    assert not deployed.mocks.named("tls:index/certRequest:CertRequest", "fleetplane-controllers-tls")[
        "dnsNames"
    ]


def test_the_provisioner_gets_the_platform_ca_to_issue_agents_certificates(deployed: Deployed) -> None:
    """With the root above it (the agents' trust ends there, and MSK trusts only the root) and
    Amazon's CAs (what the agents verify MSK's brokers against), both passed on to every agent."""
    typ, data = tls_secret(deployed.mocks, "fleetplane-ca")
    assert typ == "Opaque"
    assert data == {
        "ca.crt": "CERT platform-ca",
        "ca.key": "KEY platform-ca",
        "chain.crt": "CERT platform-root",
        "kafka-ca.crt": deployed.kafka_ca_bundle,
    }
    assert release(deployed.mocks)["values"]["provisioner"]["caSecret"] == "fleetplane-ca"


def test_the_servers_acls_name_clients_as_msk_does(deployed: Deployed) -> None:
    """MSK's configuration cannot set ssl.principal.mapping.rules: it names a client by its whole
    subject, so the chart tells the server to grant ACLs to subjects."""
    config = deployed.mocks.named("aws:msk/configuration:Configuration", "kafka")
    assert "ssl.principal.mapping.rules" not in config["serverProperties"]
    assert release(deployed.mocks)["values"]["kafka"]["principals"] == "subject"


def test_no_plain_input_holds_a_private_key(deployed: Deployed) -> None:
    leaked = [
        (r.typ, r.name)
        for r in deployed.mocks.resources
        for text in plain_strings(r.inputs)
        if "KEY " in text
    ]
    assert leaked == []


def test_the_stack_outputs(deployed: Deployed) -> None:
    assert deployed.exports == {
        "vpcId": ("vpc-id", False),
        "clusterName": ("fleetplane-management", False),
        "kubeconfig": (KUBECONFIG, True),
        "postgresEndpoint": (f"{DB_ADDRESS}:5432", False),
        "kafkaBootstrap": (BROKERS, False),
        "maestroAddress": (f"{HOSTNAME}:8090", False),
        "maestroService": ("fleetplane-hub-maestro", False),
        "platformNamespace": ("fleetplane", False),
        "privateCaArn": (ROOT_ARN, False),
        "platformCaCertificate": ("CERT platform-ca", False),
    }


def test_more_zones_than_the_region_has_is_refused(tmp_path: Path) -> None:
    # Swaps the mocks: harmless to the other tests, whose fixture resolved all it needs at once.
    pulumi.runtime.set_mocks(Recorder(ZONES[:2]), project="fleetplane", stack="aws", preview=False)
    three = aws_stack.AwsConfig.read(Reader({"availabilityZones": "3", "agentSourceRanges": RANGES}.get))
    with pytest.raises(ConfigError, match=r"fleetplane:availabilityZones = '3'.*at most 2"):
        bundle = ca_bundle(tmp_path)
        aws_stack.run(three, pulumi.Output.secret(PASSWORD), bundle, bundle)


# --- config ----------------------------------------------------------------------------------------


def read(values: dict[str, str | None], stored_as_secret: bool = True) -> aws_stack.AwsConfig:
    """Everything ``main`` reads, from ``values`` over a valid password."""
    reader = Reader({"dbPassword": PASSWORD, "agentSourceRanges": RANGES, **values}.get)
    aws_stack.read_db_password(reader, stored_as_secret)
    return aws_stack.AwsConfig.read(reader)


def test_the_defaults() -> None:
    assert read({}) == aws_stack.AwsConfig(
        vpc_cidr="10.40.0.0/16",
        availability_zones=2,
        eks_version="1.33",
        node_instance_type="m6i.large",
        node_count=2,
        db_instance_class="db.t4g.medium",
        kafka_version="3.8.x",
        kafka_brokers=2,
        image_registry="ghcr.io/fleetplane",
        image_tag="0.1.0",
        source_ranges=("203.0.113.0/24", "198.51.100.0/24"),
        maestro_hostname=None,
    )


def test_brokers_default_to_one_per_zone_and_may_be_a_multiple() -> None:
    assert read({"availabilityZones": "3"}).kafka_brokers == 3
    assert read({"availabilityZones": "3", "kafkaBrokers": "6"}).kafka_brokers == 6


BAD: list[tuple[str, dict[str, str | None], str]] = [
    ("no-nodes", {"nodeCount": "0"}, "nodeCount"),
    ("too-many-nodes", {"nodeCount": "21"}, "nodeCount"),
    ("nodes-not-a-number", {"nodeCount": "two"}, "nodeCount"),
    ("one-zone", {"availabilityZones": "1"}, "availabilityZones"),
    ("five-zones", {"availabilityZones": "5"}, "availabilityZones"),
    ("brokers-not-a-multiple", {"availabilityZones": "3", "kafkaBrokers": "4"}, "kafkaBrokers"),
    ("fewer-brokers-than-zones", {"availabilityZones": "3", "kafkaBrokers": "2"}, "kafkaBrokers"),
    ("bad-cidr", {"vpcCidr": "10.40.0.300/16"}, "vpcCidr"),
    ("cidr-with-host-bits", {"vpcCidr": "10.40.0.1/16"}, "vpcCidr"),
    ("cidr-too-small", {"vpcCidr": "10.40.0.0/24"}, "vpcCidr"),
    ("cidr-ipv6", {"vpcCidr": "fd00::/48"}, "vpcCidr"),
    ("registry-uppercase", {"imageRegistry": "ghcr.io/Fleetplane"}, "imageRegistry"),
    ("registry-with-tag", {"imageRegistry": "ghcr.io/fleetplane:0.1.0"}, "imageRegistry"),
    ("tag-latest", {"imageTag": "latest"}, "imageTag"),
    ("no-source-ranges", {"agentSourceRanges": None}, "agentSourceRanges"),
    ("source-range-not-a-network", {"agentSourceRanges": "203.0.113.0/24,agents"}, "agentSourceRanges"),
    ("source-range-everyone", {"agentSourceRanges": "0.0.0.0/0"}, "agentSourceRanges"),
    ("hostname-with-port", {"maestroHostname": "maestro.example.com:8090"}, "maestroHostname"),
    ("eks-version", {"eksVersion": "2.0"}, "eksVersion"),
    ("eks-too-old", {"eksVersion": "1.27"}, "eksVersion"),
    ("instance-type", {"nodeInstanceType": "large"}, "nodeInstanceType"),
    ("db-class", {"dbInstanceClass": "t4g.medium"}, "dbInstanceClass"),
    ("kafka-version", {"kafkaVersion": "3.8"}, "kafkaVersion"),
    ("no-password", {"dbPassword": None}, "dbPassword"),
    ("short-password", {"dbPassword": "h0rse!"}, "dbPassword"),
    ("password-with-at", {"dbPassword": "correct@horse-battery"}, "dbPassword"),
]


@pytest.mark.parametrize(("values", "key"), [(v, k) for _, v, k in BAD], ids=[i for i, _, _ in BAD])
def test_a_wrong_value_is_refused_naming_its_key(values: dict[str, str | None], key: str) -> None:
    with pytest.raises(ConfigError) as refused:
        read(values)
    message = str(refused.value)
    assert f"fleetplane:{key} = " in message and f"fix: pulumi config set fleetplane:{key} " in message
    assert "horse" not in message  # a refused password is never repeated


def test_a_password_set_without_secret_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"fleetplane:dbPassword = '<set without --secret>'") as refused:
        read({}, stored_as_secret=False)
    assert "horse" not in str(refused.value)


def test_main_asks_pulumi_whether_the_password_is_a_secret() -> None:
    pulumi.runtime.set_all_config(
        {"fleetplane:dbPassword": PASSWORD, "fleetplane:agentSourceRanges": RANGES}, []
    )
    try:
        config = pulumi.Config("fleetplane")
        with pytest.raises(ConfigError, match="without --secret"):
            aws_stack.main(Reader(config.get), config)
    finally:
        pulumi.runtime.set_all_config({}, [])


BUNDLES = [
    (aws_stack.read_db_ca_bundle, "dbCaBundle", aws_stack.RDS_CA_BUNDLE_URL),
    (aws_stack.read_kafka_ca_bundle, "kafkaCaBundle", aws_stack.AMAZON_TRUST_URL),
]


@pytest.mark.parametrize(("read_bundle", "key", "source"), BUNDLES, ids=[k for _, k, _ in BUNDLES])
def test_a_ca_bundle_is_read_from_the_file_it_names(
    tmp_path: Path, read_bundle: Callable[[Reader], str], key: str, source: str
) -> None:
    pem = ca_bundle(tmp_path / "ca")
    (tmp_path / "bundle.pem").write_text(pem + pem)  # a bundle holds several
    assert read_bundle(Reader({key: str(tmp_path / "bundle.pem")}.get)) == pem + pem


@pytest.mark.parametrize(("read_bundle", "key", "source"), BUNDLES, ids=[k for _, k, _ in BUNDLES])
def test_a_ca_bundle_that_is_not_one_is_refused(
    tmp_path: Path, read_bundle: Callable[[Reader], str], key: str, source: str
) -> None:
    ca = pki.ensure_ca(tmp_path / "ca")
    (tmp_path / "notes.txt").write_text("not a certificate")
    (tmp_path / "with-key.pem").write_text(ca.cert.read_text() + ca.key.read_text())
    for value in (
        None,
        "",
        str(tmp_path / "missing.pem"),
        str(tmp_path / "notes.txt"),
        str(tmp_path / "with-key.pem"),
    ):
        with pytest.raises(ConfigError) as refused:
            read_bundle(Reader({key: value}.get))
        message = str(refused.value)
        assert f"fleetplane:{key} = " in message and source in message
        assert "PRIVATE KEY" not in message


def test_subnets_are_carved_from_the_vpc() -> None:
    public, private = aws_stack.subnet_cidrs("10.40.0.0/16", 3)
    assert public == ["10.40.0.0/19", "10.40.32.0/19", "10.40.64.0/19"]
    assert private == ["10.40.96.0/19", "10.40.128.0/19", "10.40.160.0/19"]
