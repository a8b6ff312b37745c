"""The aws stack against Pulumi's unit-test mocks: what it would create, how it is wired, its outputs.

Cases: the VPC has a public and a private subnet per zone; the EKS cluster's nodes live in the
private subnets without public addresses; RDS and MSK sit in the private subnets behind security
groups that let in only the cluster's nodes, on their one port; RDS is private and encrypted; the
DB password and the DSN stay secrets and reach the pods only through a Secret; the Deployments run
the real CLI commands with the real flags; the provisioner's CRDs and the worker-cluster definition
and Composition are applied; the outputs carry the mocked endpoints; each wrong config value is
refused naming its key.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import pulumi
import pytest
from pulumi.runtime import rpc

from bootstrap import aws_stack
from bootstrap.stack_config import ConfigError, Reader
from provisioner import api

PASSWORD = "correct-horse-battery"
ZONES = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
DB_ADDRESS = "maestro.abc123.eu-west-1.rds.amazonaws.com"
BROKERS = (
    "b-1.fleetplane.kafka.eu-west-1.amazonaws.com:9092,b-2.fleetplane.kafka.eu-west-1.amazonaws.com:9092"
)
NODES_SG = "sg-0nodes"


class Recorder(pulumi.runtime.Mocks):
    """Answers as AWS and the EKS component would, and records every registration."""

    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(args)
        state = dict(args.inputs)
        if args.typ == "eks:index:Cluster":
            state.update(
                kubeconfigJson=json.dumps({"apiVersion": "v1", "kind": "Config"}),
                nodeSecurityGroupId=NODES_SG,
            )
        elif args.typ == "aws:rds/instance:Instance":
            state.update(address=DB_ADDRESS, endpoint=f"{DB_ADDRESS}:5432")
        elif args.typ == "aws:msk/cluster:Cluster":
            state.update(bootstrapBrokers=BROKERS)
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        if args.token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            return {"names": ZONES, "zoneIds": ["euw1-az1", "euw1-az2", "euw1-az3"], "id": "eu-west-1"}
        if args.token == "aws:index/getRegion:getRegion":
            return {
                "name": "eu-west-1",
                "region": "eu-west-1",
                "id": "eu-west-1",
                "endpoint": "",
                "description": "",
            }
        return {}

    def of_type(self, typ: str) -> list[pulumi.runtime.MockResourceArgs]:
        return [r for r in self.resources if r.typ == typ]

    def named(self, typ: str, name: str) -> dict[str, Any]:
        (found,) = [r for r in self.of_type(typ) if r.name == name]
        return dict(found.inputs)


def resolve(output: pulumi.Output[Any]) -> Any:
    return asyncio.get_event_loop().run_until_complete(output.future())


def is_secret(output: pulumi.Output[Any]) -> bool:
    return bool(asyncio.get_event_loop().run_until_complete(output.is_secret()))


CONFIG = aws_stack.AwsConfig.read(Reader({}.get))


@pytest.fixture(scope="module")
def deployed() -> Iterator[tuple[Recorder, aws_stack.Created]]:
    mocks = Recorder()
    pulumi.runtime.set_mocks(mocks, project="fleetplane", stack="aws", preview=False)
    made: dict[str, aws_stack.Created] = {}

    @pulumi.runtime.test
    def deploy() -> pulumi.Output[Any]:
        made["stack"] = created = aws_stack.run(CONFIG, pulumi.Output.secret(PASSWORD))
        return pulumi.Output.all(created.dsn, created.maestro_address, created.kafka.bootstrap_brokers)

    deploy()
    yield mocks, made["stack"]


def test_the_vpc_has_a_public_and_a_private_subnet_per_zone(deployed: tuple[Recorder, Any]) -> None:
    mocks, _ = deployed
    subnets = {r.name: r.inputs for r in mocks.of_type("aws:ec2/subnet:Subnet")}
    assert sorted(subnets) == ["private-0", "private-1", "public-0", "public-1"]
    assert [subnets[f"public-{i}"]["availabilityZone"] for i in (0, 1)] == ZONES[:2]
    assert subnets["public-0"]["mapPublicIpOnLaunch"] is True
    assert not subnets["private-0"].get("mapPublicIpOnLaunch")
    assert mocks.named("aws:ec2/vpc:Vpc", "vpc")["cidrBlock"] == "10.40.0.0/16"
    (private_table,) = [r for r in mocks.of_type("aws:ec2/routeTable:RouteTable") if r.name == "private"]
    assert private_table.inputs["routes"][0]["natGatewayId"] == "nat-id"


def test_eks_nodes_are_private(deployed: tuple[Recorder, Any]) -> None:
    mocks, _ = deployed
    cluster = mocks.named("eks:index:Cluster", "management")
    assert cluster["privateSubnetIds"] == ["private-0-id", "private-1-id"]
    assert cluster["nodeAssociatePublicIpAddress"] is False
    assert cluster["desiredCapacity"] == 2 and cluster["version"] == "1.33"


@pytest.mark.parametrize(("group", "port"), [("postgres", 5432), ("kafka", 9092)])
def test_data_services_let_in_only_the_nodes_on_their_port(
    deployed: tuple[Recorder, Any], group: str, port: int
) -> None:
    mocks, _ = deployed
    (ingress,) = mocks.named("aws:ec2/securityGroup:SecurityGroup", group)["ingress"]
    assert ingress == {"protocol": "tcp", "fromPort": port, "toPort": port, "securityGroups": [NODES_SG]}


def test_rds_and_msk_are_in_the_private_subnets(deployed: tuple[Recorder, Any]) -> None:
    mocks, _ = deployed
    db = mocks.named("aws:rds/instance:Instance", "maestro")
    assert db["publiclyAccessible"] is False and db["storageEncrypted"] is True
    assert db["vpcSecurityGroupIds"] == ["postgres-id"]
    assert mocks.named("aws:rds/subnetGroup:SubnetGroup", "maestro")["subnetIds"] == [
        "private-0-id",
        "private-1-id",
    ]
    kafka = mocks.named("aws:msk/cluster:Cluster", "kafka")
    assert kafka["brokerNodeGroupInfo"]["clientSubnets"] == ["private-0-id", "private-1-id"]
    assert kafka["brokerNodeGroupInfo"]["securityGroups"] == ["kafka-id"]
    assert kafka["numberOfBrokerNodes"] == 2
    assert kafka["encryptionInfo"]["encryptionInTransit"]["inCluster"] is True


def test_credentials_stay_secret(deployed: tuple[Recorder, aws_stack.Created]) -> None:
    _, created = deployed
    assert is_secret(created.db.password)
    assert is_secret(created.dsn)
    assert (
        resolve(created.dsn) == f"postgresql://maestro:{PASSWORD}@{DB_ADDRESS}:5432/maestro?sslmode=require"
    )


def deployment(mocks: Recorder, name: str) -> dict[str, Any]:
    spec = mocks.named("kubernetes:apps/v1:Deployment", name)["spec"]
    pod: dict[str, Any] = spec["template"]["spec"]
    return pod


def test_the_pods_run_the_real_commands(deployed: tuple[Recorder, Any]) -> None:
    mocks, _ = deployed
    maestro = deployment(mocks, "maestro")
    (server,) = maestro["containers"]
    assert server["command"] == ["fleetplane"]
    assert server["args"][:4] == ["maestro", "server", "--kafka", "$(KAFKA_BOOTSTRAP)"]
    assert maestro["initContainers"][0]["args"] == ["maestro", "migrate"]
    dsn = {"name": "MAESTRO_DSN", "valueFrom": {"secretKeyRef": {"name": "maestro-db", "key": "dsn"}}}
    assert dsn in server["env"] and dsn in maestro["initContainers"][0]["env"]
    provisioner = deployment(mocks, "provisioner")["containers"][0]["args"]
    assert provisioner[:2] == ["provisioner", "run"]
    assert provisioner[provisioner.index("--aws-region") + 1] == "eu-west-1"
    assert provisioner[provisioner.index("--maestro") + 1] == "maestro.fleetplane.svc:8090"
    controllers = deployment(mocks, "controllers")["containers"][0]["args"]
    assert controllers[:2] == ["controllers", "run"]
    assert mocks.named("kubernetes:core/v1:ConfigMap", "kafka")["data"] == {"bootstrap": BROKERS}
    # The DSN reaches the cluster only in a Secret, and Pulumi sends it to the provider as a secret.
    data = mocks.named("kubernetes:core/v1:Secret", "maestro-db")["stringData"]
    assert data[rpc._special_sig_key] == rpc._special_secret_sig
    assert data["value"]["dsn"].startswith("postgresql://maestro:")


def test_the_platform_crds_and_the_default_composition_are_applied(deployed: tuple[Recorder, Any]) -> None:
    mocks, _ = deployed
    groups = {r.name: r.inputs for r in mocks.of_type("kubernetes:yaml/v2:ConfigGroup")}
    crd_names = [o["metadata"]["name"] for o in groups["platform-crds"]["objs"]]
    assert crd_names == [c["metadata"]["name"] for c in api.platform_crds()]
    kinds = [o["kind"] for o in groups["worker-cluster"]["objs"]]
    assert kinds == ["CompositeResourceDefinition", "Composition"]


def test_outputs(deployed: tuple[Recorder, aws_stack.Created]) -> None:
    _, created = deployed
    assert resolve(created.maestro_address) == "maestro.fleetplane.svc:8090"
    assert resolve(created.kafka.bootstrap_brokers) == BROKERS
    assert resolve(created.db.endpoint) == f"{DB_ADDRESS}:5432"
    assert resolve(created.cluster.node_security_group_id) == NODES_SG


def read(**values: str) -> aws_stack.AwsConfig:
    return aws_stack.AwsConfig.read(Reader(values.get))


BAD: list[tuple[str, dict[str, str], str]] = [
    ("no-nodes", {"nodeCount": "0"}, "fleetplane:nodeCount"),
    ("five-zones", {"availabilityZones": "5"}, "fleetplane:availabilityZones"),
    ("brokers-not-a-multiple", {"availabilityZones": "3", "kafkaBrokers": "4"}, "fleetplane:kafkaBrokers"),
    ("bad-cidr", {"vpcCidr": "10.40.0.300/16"}, "fleetplane:vpcCidr"),
    ("cidr-too-small", {"vpcCidr": "10.40.0.0/24"}, "fleetplane:vpcCidr"),
    ("image-without-tag", {"image": "fleetplane"}, "fleetplane:image"),
    ("eks-version", {"eksVersion": "2.0"}, "fleetplane:eksVersion"),
]


@pytest.mark.parametrize(("values", "key"), [(v, k) for _, v, k in BAD], ids=[i for i, _, _ in BAD])
def test_a_wrong_value_is_refused_naming_its_key(values: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as refused:
        read(**values)
    assert key in str(refused.value) and "fix: pulumi config set" in str(refused.value)


def test_a_missing_db_password_is_a_config_error() -> None:
    config: Callable[[str], None] = lambda key: None  # noqa: E731 - a config with no value at all

    class NoSecrets:
        def get_secret(self, key: str) -> None:
            return config(key)

    with pytest.raises(ConfigError, match=r"fleetplane:dbPassword.*--secret"):
        aws_stack.main(Reader(config), NoSecrets())  # type: ignore[arg-type]


def test_subnets_are_carved_from_the_vpc() -> None:
    public, private = aws_stack.subnet_cidrs("10.40.0.0/16", 3)
    assert public == ["10.40.0.0/19", "10.40.32.0/19", "10.40.64.0/19"]
    assert private == ["10.40.96.0/19", "10.40.128.0/19", "10.40.160.0/19"]
