"""The aws stack against Pulumi's unit-test mocks: what it would create, how it is wired, its outputs.

Cases: the VPC has a public and a private subnet per zone, routed through the internet gateway and
the NAT gateway; the EKS cluster's nodes live in the private subnets without public addresses;
RDS and MSK sit in the private subnets behind security groups that let in only the cluster's
nodes, on their one port; RDS is private and encrypted and its parameter group forces TLS; the
DB password stays a secret, appears in no plain input or output and in no DSN, and reaches the
Maestro containers only through a Secret, as PGPASSWORD; the DSN asks for verify-full against the
RDS CA bundle, which both Maestro containers mount from a ConfigMap; every Kubernetes
object goes to the provider made from the EKS kubeconfig; each container runs a real `fleetplane`
command whose flags and environment variables are the ones the CLI declares; the provisioner's
CRDs and the worker-cluster definition and Composition are applied; the stack's outputs carry the
mocked endpoints; each wrong config value is refused naming its key, a missing, unreadable or
non-certificate CA bundle too.

The mocks answer as AWS would (ids, the RDS address, MSK's brokers, the availability zones) and,
for ``eks:index:Cluster`` (a multi-language component, registered as a remote resource), with the
component's outputs the program reads: ``kubeconfigJson`` and ``nodeSecurityGroupId``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pulumi
import pytest
import typer
from psycopg.conninfo import conninfo_to_dict
from pulumi.runtime import rpc

from bootstrap import aws_platform, aws_stack
from bootstrap.stack_config import ConfigError, Reader
from fleetplane.cli import app
from localinfra import pki
from provisioner import api

#: has characters a URI must quote, to show the DSN still carries it intact
PASSWORD = "correct:horse#battery%staple"
ZONES = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
DB_ADDRESS = "maestro.abc123.eu-west-1.rds.amazonaws.com"
BROKERS = (
    "b-1.fleetplane.kafka.eu-west-1.amazonaws.com:9092,b-2.fleetplane.kafka.eu-west-1.amazonaws.com:9092"
)
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
            state.update(bootstrapBrokers=BROKERS)
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


CONFIG = aws_stack.AwsConfig.read(Reader(dict[str, str]().get))


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Deployed:
    mocks = Recorder(ZONES)
    pulumi.runtime.set_mocks(mocks, project="fleetplane", stack="aws", preview=False)
    made: dict[str, aws_stack.Created] = {}
    bundle = ca_bundle(tmp_path_factory.mktemp("rds-ca"))

    @pulumi.runtime.test
    def deploy() -> pulumi.Output[str]:
        made["stack"] = created = aws_stack.run(CONFIG, pulumi.Output.secret(PASSWORD), bundle)
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


@pytest.mark.parametrize(("group", "port"), [("postgres", 5432), ("kafka", 9092)])
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
    assert len(objects) > 10
    # not one to the default provider, which would be whatever cluster the operator's kubeconfig names
    strays = [
        (r.typ, r.name)
        for r in objects
        if "pulumi:providers:kubernetes::management::" not in (r.provider or "")
    ]
    assert strays == []


def pod(mocks: Recorder, deployment: str) -> dict[str, Any]:
    spec = mocks.named("kubernetes:apps/v1:Deployment", deployment)["spec"]
    template: dict[str, Any] = spec["template"]
    assert spec["selector"]["matchLabels"] == template["metadata"]["labels"]
    return dict(template["spec"])


def pod_labels(mocks: Recorder, deployment: str) -> dict[str, str]:
    spec = mocks.named("kubernetes:apps/v1:Deployment", deployment)["spec"]
    return dict(spec["template"]["metadata"]["labels"])


def container(mocks: Recorder, where: str) -> dict[str, Any]:
    deployment, name = where.split("/")
    spec = pod(mocks, deployment)
    (found,) = [c for c in spec.get("initContainers", []) + spec["containers"] if c["name"] == name]
    return dict(found)


def cli_command(*path: str) -> Any:
    """The click command ``fleetplane <path>`` runs (typer's vendored click: no public types)."""
    command: Any = typer.main.get_command(app)
    for name in path:
        # through get_command: the group imports its subcommands when first asked for them
        command = command.get_command(typer.Context(command), name)
    return command


def flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


CONTAINERS = ["maestro/migrate", "maestro/maestro", "provisioner/provisioner", "controllers/controllers"]


@pytest.mark.parametrize("where", CONTAINERS)
def test_each_container_runs_a_real_command_with_its_real_flags(deployed: Deployed, where: str) -> None:
    spec = container(deployed.mocks, where)
    assert spec["command"] == ["fleetplane"]
    assert spec["image"] == "ghcr.io/fleetplane/fleetplane:0.1.0"
    args: list[str] = spec["args"]
    command = cli_command(*itertools.takewhile(lambda a: not a.startswith("-"), args))
    options = {opt: param for param in command.params for opt in param.opts}
    flags = [a for a in args if a.startswith("--")]
    assert set(flags) <= options.keys(), f"`fleetplane {' '.join(args)}`: unknown flags"
    env = {e["name"] for e in spec["env"]}
    for param in command.params:
        if param.required:
            # given as a flag, or through the variable the CLI reads for it
            assert set(param.opts) & set(flags) or param.envvar in env, param.opts
    # Kubernetes expands $(NAME) in args only for a variable the container defines
    assert set(re.findall(r"\$\((\w+)\)", " ".join(args))) <= env


def test_the_commands_reach_the_dsn_the_brokers_and_each_other(deployed: Deployed) -> None:
    mocks = deployed.mocks
    dsn = {"name": "MAESTRO_DSN", "valueFrom": {"secretKeyRef": {"name": "maestro-db", "key": "dsn"}}}
    password = {
        "name": "PGPASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "maestro-db", "key": "password"}},
    }
    brokers = {
        "name": "KAFKA_BOOTSTRAP",
        "valueFrom": {"configMapKeyRef": {"name": "kafka", "key": "bootstrap"}},
    }
    assert mocks.named("kubernetes:core/v1:ConfigMap", "kafka")["data"] == {"bootstrap": BROKERS}
    server = container(mocks, "maestro/maestro")
    ca = {"name": "maestro-db-ca", "mountPath": "/etc/fleetplane/postgres-ca", "readOnly": True}
    for spec in (container(mocks, "maestro/migrate"), server):
        assert dsn in spec["env"] and password in spec["env"]
        assert spec["volumeMounts"] == [ca]
    assert pod(mocks, "maestro")["volumes"] == [
        {"name": "maestro-db-ca", "configMap": {"name": "maestro-db-ca"}}
    ]
    bundle = mocks.named("kubernetes:core/v1:ConfigMap", "maestro-db-ca")
    assert bundle["metadata"]["namespace"] == "fleetplane"
    assert bundle["data"] == {"ca.pem": deployed.ca_bundle}
    assert f"{ca['mountPath']}/ca.pem" == aws_platform.DB_CA_FILE
    assert brokers in server["env"]
    assert flag(server["args"], "--kafka") == "$(KAFKA_BOOTSTRAP)"
    assert flag(server["args"], "--host") == "0.0.0.0"
    assert flag(server["args"], "--port") == "8090"
    assert server["readinessProbe"]["grpc"] == {"port": 8090}
    service = mocks.named("kubernetes:core/v1:Service", "maestro")["spec"]
    assert service["selector"] == {"app": "maestro"} == pod_labels(mocks, "maestro")
    assert service["ports"] == [{"name": "grpc", "port": 8090}]
    address = f"maestro.{aws_platform.NAMESPACE}.svc:8090"
    provisioner = container(mocks, "provisioner/provisioner")
    assert brokers in provisioner["env"] and flag(provisioner["args"], "--kafka") == "$(KAFKA_BOOTSTRAP)"
    assert flag(provisioner["args"], "--maestro") == address
    assert flag(provisioner["args"], "--aws-region") == "eu-west-1"
    assert flag(container(mocks, "controllers/controllers")["args"], "--maestro") == address
    for where in CONTAINERS[2:]:
        assert dsn not in container(mocks, where)["env"] and password not in container(mocks, where)["env"]
        assert "volumeMounts" not in container(mocks, where)


def test_the_pods_run_as_the_bound_service_account(deployed: Deployed) -> None:
    mocks = deployed.mocks
    account = mocks.named("kubernetes:core/v1:ServiceAccount", "fleetplane")["metadata"]
    assert account == {"name": "fleetplane", "namespace": "fleetplane"}
    for deployment in ("maestro", "provisioner", "controllers"):
        assert pod(mocks, deployment)["serviceAccountName"] == "fleetplane"
        # the operators' replicas elect a leader; the servers all serve
        assert mocks.named("kubernetes:apps/v1:Deployment", deployment)["spec"]["replicas"] == 2
    binding = mocks.named("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding", "fleetplane")
    assert binding["roleRef"]["name"] == "fleetplane"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "fleetplane", "namespace": "fleetplane"}
    ]
    rules = mocks.named("kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", "fleetplane")["rules"]
    assert any("platform.fleetplane.io" in r["apiGroups"] for r in rules)


def test_the_platform_crds_and_the_default_composition_are_applied(deployed: Deployed) -> None:
    groups = {r.name: r.inputs for r in deployed.mocks.of_type("kubernetes:yaml/v2:ConfigGroup")}
    assert groups["platform-crds"]["objs"] == api.platform_crds()
    kinds = [o["kind"] for o in groups["worker-cluster"]["objs"]]
    assert kinds == ["CompositeResourceDefinition", "Composition"]


def test_the_stack_outputs(deployed: Deployed) -> None:
    assert deployed.exports == {
        "vpcId": ("vpc-id", False),
        "clusterName": ("fleetplane-management", False),
        "kubeconfig": (KUBECONFIG, True),
        "postgresEndpoint": (f"{DB_ADDRESS}:5432", False),
        "kafkaBootstrap": (BROKERS, False),
        "maestroAddress": ("maestro.fleetplane.svc:8090", False),
        "platformNamespace": ("fleetplane", False),
    }


def test_more_zones_than_the_region_has_is_refused(tmp_path: Path) -> None:
    # Swaps the mocks: harmless to the other tests, whose fixture resolved all it needs at once.
    pulumi.runtime.set_mocks(Recorder(ZONES[:2]), project="fleetplane", stack="aws", preview=False)
    three = aws_stack.AwsConfig.read(Reader({"availabilityZones": "3"}.get))
    with pytest.raises(ConfigError, match=r"fleetplane:availabilityZones = '3'.*at most 2"):
        aws_stack.run(three, pulumi.Output.secret(PASSWORD), ca_bundle(tmp_path))


# --- config ----------------------------------------------------------------------------------------


def read(values: dict[str, str | None], stored_as_secret: bool = True) -> aws_stack.AwsConfig:
    """Everything ``main`` reads, from ``values`` over a valid password."""
    reader = Reader({"dbPassword": PASSWORD, **values}.get)
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
        image="ghcr.io/fleetplane/fleetplane:0.1.0",
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
    ("image-without-tag", {"image": "ghcr.io/fleetplane/fleetplane"}, "image"),
    ("image-uppercase", {"image": "ghcr.io/Fleetplane/fleetplane:0.1.0"}, "image"),
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
    pulumi.runtime.set_all_config({"fleetplane:dbPassword": PASSWORD}, [])
    try:
        config = pulumi.Config("fleetplane")
        with pytest.raises(ConfigError, match="without --secret"):
            aws_stack.main(Reader(config.get), config)
    finally:
        pulumi.runtime.set_all_config({}, [])


def test_the_ca_bundle_is_read_from_the_file_it_names(tmp_path: Path) -> None:
    pem = ca_bundle(tmp_path / "ca")
    (tmp_path / "bundle.pem").write_text(pem + pem)  # a bundle holds several
    assert aws_stack.read_db_ca_bundle(Reader({"dbCaBundle": str(tmp_path / "bundle.pem")}.get)) == pem + pem


def test_a_ca_bundle_that_is_not_one_is_refused(tmp_path: Path) -> None:
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
            aws_stack.read_db_ca_bundle(Reader({"dbCaBundle": value}.get))
        message = str(refused.value)
        assert "fleetplane:dbCaBundle = " in message and aws_stack.RDS_CA_BUNDLE_URL in message
        assert "PRIVATE KEY" not in message


def test_subnets_are_carved_from_the_vpc() -> None:
    public, private = aws_stack.subnet_cidrs("10.40.0.0/16", 3)
    assert public == ["10.40.0.0/19", "10.40.32.0/19", "10.40.64.0/19"]
    assert private == ["10.40.96.0/19", "10.40.128.0/19", "10.40.160.0/19"]
