"""The ``aws`` stack: a VPC, an EKS management cluster, RDS PostgreSQL, MSK, and the platform on EKS.

Config (``pulumi config set fleetplane:<key> <value>``; ``aws:region`` picks the region):
- ``vpcCidr`` (default ``10.40.0.0/16``; a /16 to /20): carved into one public and one private
  subnet per availability zone;
- ``availabilityZones`` (2..3, default 2; no more than the region has available);
- ``eksVersion`` (default ``1.33``), ``nodeInstanceType`` (default ``m6i.large``), ``nodeCount``
  (1..20, default 2): the management cluster's nodes, in the private subnets;
- ``dbInstanceClass`` (default ``db.t4g.medium``) and ``dbPassword`` (required, and refused unless
  set with ``--secret``; 8 to 128 printable ASCII characters but ``/ ' " @`` and space, as RDS
  requires): Maestro's PostgreSQL, private and encrypted;
- ``dbCaBundle`` (required): a PEM file of the certificate authorities that sign RDS's server
  certificates (AWS publishes it: ``RDS_CA_BUNDLE_URL``; nothing here downloads it). RDS refuses
  connections without TLS (``rds.force_ssl``) and Maestro verifies the server against this bundle
  and its name (``sslmode=verify-full``);
- ``kafkaVersion`` (default ``3.8.x``), ``kafkaBrokers`` (default 2; a multiple of the zones):
  MSK, in the private subnets, reached over TLS only (port 9094) by clients that authenticate with
  certificates of the stack's ACM Private CA; Kafka's ACLs are enforced
  (``allow.everyone.if.no.acl.found=false``);
- ``kafkaCaBundle`` (required): a PEM file of the CAs that sign MSK's broker certificates, Amazon
  Trust Services' root CAs (``AMAZON_TRUST_URL``; nothing here downloads them); the processes
  verify the brokers against it (``kafka-ca.crt`` in their TLS folders);
- ``agentSourceRanges`` (required): comma-separated IPv4 CIDRs of the agents' networks, the only
  sources the Maestro server's load balancer lets in;
- ``maestroHostname`` (optional): the DNS name agents dial (a record you point at the load
  balancer), added to the server's certificate;
- ``imageRegistry`` (default ``ghcr.io/fleetplane``) and ``imageTag`` (default ``0.1.0``): the
  chart's images ``<registry>/fleetplane-server`` and ``<registry>/fleetplane-hub``. No image is
  published from here.

It cannot reach AWS from this machine: ``tests/unit/bootstrap/test_aws_stack.py`` runs it against
Pulumi's mocks and checks the resources, their wiring and the outputs.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks
import pulumi_kubernetes as k8s
from cryptography import x509

from bootstrap import aws_platform, aws_tls
from bootstrap.stack_config import ConfigError, Reader

POSTGRES_PORT = 5432
POSTGRES_VERSION = "17"
#: MSK's TLS listener (the only one: plaintext is off)
KAFKA_PORT = 9094
CLUSTER_NAME = "fleetplane-management"
#: registry[:port]/path... (the chart appends /fleetplane-server and /fleetplane-hub)
REGISTRY_PATTERN = r"[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*"
#: a tag (a bare `latest` would drift under the stack)
TAG_PATTERN = r"(?!latest$)[\w][\w.-]{0,127}"
HOSTNAME_PATTERN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+"
#: What RDS accepts as a PostgreSQL master password.
DB_PASSWORD_PATTERN = r"[!#-&(-.0-?A-~]{8,128}"
#: Where AWS publishes the certificate authorities of every region's RDS server certificates.
RDS_CA_BUNDLE_URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
#: Where Amazon Trust Services publishes the root CAs MSK's broker certificates chain to.
AMAZON_TRUST_URL = "https://www.amazontrust.com/repository/"


@dataclass(frozen=True)
class AwsConfig:
    vpc_cidr: str
    availability_zones: int
    eks_version: str
    node_instance_type: str
    node_count: int
    db_instance_class: str
    kafka_version: str
    kafka_brokers: int
    image_registry: str
    image_tag: str
    source_ranges: tuple[str, ...]
    maestro_hostname: str | None

    @classmethod
    def read(cls, reader: Reader) -> AwsConfig:
        cidr = reader.string("vpcCidr", "10.40.0.0/16", r"[0-9./]+", "an IPv4 CIDR such as 10.40.0.0/16")
        try:
            network = ipaddress.IPv4Network(cidr)
        except ValueError:
            raise ConfigError(
                "vpcCidr", cidr, "an IPv4 network address such as 10.40.0.0/16", "10.40.0.0/16"
            ) from None
        if not 16 <= network.prefixlen <= 20:
            raise ConfigError(
                "vpcCidr", cidr, "a /16 to /20 network (six subnets are carved from it)", "10.40.0.0/16"
            )
        zones = reader.integer("availabilityZones", 2, 2, 3)
        brokers = reader.integer("kafkaBrokers", zones, zones, 3 * zones)
        if brokers % zones:
            raise ConfigError(
                "kafkaBrokers", str(brokers), f"a multiple of availabilityZones ({zones})", str(zones)
            )
        return cls(
            vpc_cidr=cidr,
            availability_zones=zones,
            eks_version=reader.string(
                "eksVersion", "1.33", r"1\.(2[89]|3[0-9])", "an EKS version from 1.28 to 1.39"
            ),
            node_instance_type=reader.string(
                "nodeInstanceType",
                "m6i.large",
                r"[a-z][a-z0-9-]*\.[0-9]*[a-z]+",
                "an EC2 instance type such as m6i.large",
            ),
            node_count=reader.integer("nodeCount", 2, 1, 20),
            db_instance_class=reader.string(
                "dbInstanceClass",
                "db.t4g.medium",
                r"db\.[a-z0-9]+\.[0-9]*[a-z]+",
                "an RDS class such as db.t4g.medium",
            ),
            kafka_version=reader.string(
                "kafkaVersion", "3.8.x", r"[0-9]+\.[0-9]+\.([0-9]+|x)", "an MSK Kafka version such as 3.8.x"
            ),
            kafka_brokers=brokers,
            image_registry=reader.string(
                "imageRegistry",
                "ghcr.io/fleetplane",
                REGISTRY_PATTERN,
                "a registry and path such as ghcr.io/org",
            ),
            image_tag=reader.string("imageTag", "0.1.0", TAG_PATTERN, "an image tag other than latest"),
            source_ranges=read_source_ranges(reader),
            maestro_hostname=reader.string("maestroHostname", "", HOSTNAME_PATTERN, "a DNS name") or None,
        )


def read_source_ranges(reader: Reader) -> tuple[str, ...]:
    """The required ``agentSourceRanges``: IPv4 networks, none of them the whole internet."""
    expected = "comma-separated IPv4 networks of the agents, such as 203.0.113.0/24,198.51.100.0/24"
    example = "203.0.113.0/24"
    raw = reader.get("agentSourceRanges") or ""
    ranges = tuple(part.strip() for part in raw.split(",") if part.strip())
    if not ranges:
        raise ConfigError("agentSourceRanges", raw, expected, example)
    for cidr in ranges:
        try:
            network = ipaddress.IPv4Network(cidr)
        except ValueError:
            raise ConfigError("agentSourceRanges", raw, expected, example) from None
        # the server checks every client's certificate, but it is not to be probed by anyone
        if network.prefixlen == 0:
            raise ConfigError("agentSourceRanges", raw, f"{expected}; not 0.0.0.0/0", example)
    return ranges


def subnet_cidrs(vpc_cidr: str, zones: int) -> tuple[list[str], list[str]]:
    """Public and private subnets, one of each per zone, each an eighth of the VPC."""
    blocks = [str(b) for b in ipaddress.IPv4Network(vpc_cidr).subnets(prefixlen_diff=3)]
    return blocks[:zones], blocks[zones : 2 * zones]


def _tags(name: str, **extra: str) -> dict[str, str]:
    return {"Name": f"fleetplane-{name}", "app.kubernetes.io/part-of": "fleetplane", **extra}


@dataclass(frozen=True)
class Created:
    """What ``run`` made that its tests look into (everything is exported or wired below)."""

    vpc: aws.ec2.Vpc
    cluster: eks.Cluster
    db: aws.rds.Instance
    db_security_group: aws.ec2.SecurityGroup
    kafka: aws.msk.Cluster
    kafka_security_group: aws.ec2.SecurityGroup
    dsn: pulumi.Output[str]
    maestro_address: pulumi.Output[str]


def run(
    config: AwsConfig, db_password: pulumi.Output[str], db_ca_bundle: str, kafka_ca_bundle: str
) -> Created:
    """Everything; the bundles are the PEM text of the CAs RDS's and MSK's certificates are checked
    against."""
    zones = aws.get_availability_zones(state="available").names
    if len(zones) < config.availability_zones:
        raise ConfigError(
            "availabilityZones",
            str(config.availability_zones),
            f"at most {len(zones)}, the zones this region has available",
            str(len(zones)),
        )
    zones = zones[: config.availability_zones]
    vpc = aws.ec2.Vpc(
        "vpc",
        cidr_block=config.vpc_cidr,
        enable_dns_hostnames=True,
        enable_dns_support=True,
        tags=_tags("vpc"),
    )
    igw = aws.ec2.InternetGateway("igw", vpc_id=vpc.id, tags=_tags("igw"))
    public_cidrs, private_cidrs = subnet_cidrs(config.vpc_cidr, config.availability_zones)
    public = [
        aws.ec2.Subnet(
            f"public-{i}",
            vpc_id=vpc.id,
            cidr_block=cidr,
            availability_zone=zone,
            map_public_ip_on_launch=True,
            tags=_tags(f"public-{i}", **{"kubernetes.io/role/elb": "1"}),
        )
        for i, (cidr, zone) in enumerate(zip(public_cidrs, zones, strict=True))
    ]
    private = [
        aws.ec2.Subnet(
            f"private-{i}",
            vpc_id=vpc.id,
            cidr_block=cidr,
            availability_zone=zone,
            tags=_tags(f"private-{i}", **{"kubernetes.io/role/internal-elb": "1"}),
        )
        for i, (cidr, zone) in enumerate(zip(private_cidrs, zones, strict=True))
    ]
    public_routes = aws.ec2.RouteTable(
        "public",
        vpc_id=vpc.id,
        routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": igw.id}],
        tags=_tags("public"),
    )
    # One NAT gateway for the private subnets: the management plane's egress is light, and a NAT
    # per zone triples its cost; a zone outage then cuts egress only, not the cluster.
    nat = aws.ec2.NatGateway(
        "nat",
        subnet_id=public[0].id,
        allocation_id=aws.ec2.Eip("nat", domain="vpc", tags=_tags("nat")).id,
        tags=_tags("nat"),
    )
    private_routes = aws.ec2.RouteTable(
        "private",
        vpc_id=vpc.id,
        routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat.id}],
        tags=_tags("private"),
    )
    for i, subnet in enumerate(public):
        aws.ec2.RouteTableAssociation(f"public-{i}", subnet_id=subnet.id, route_table_id=public_routes.id)
    for i, subnet in enumerate(private):
        aws.ec2.RouteTableAssociation(f"private-{i}", subnet_id=subnet.id, route_table_id=private_routes.id)
    private_ids = [s.id for s in private]

    cluster = eks.Cluster(
        "management",
        name=CLUSTER_NAME,
        vpc_id=vpc.id,
        public_subnet_ids=[s.id for s in public],
        private_subnet_ids=private_ids,
        node_associate_public_ip_address=False,
        instance_type=config.node_instance_type,
        desired_capacity=config.node_count,
        min_size=config.node_count,
        max_size=2 * config.node_count,
        version=config.eks_version,
        tags=_tags("management"),
    )
    nodes = cluster.node_security_group_id

    db_sg = _reachable_from_nodes("postgres", vpc.id, nodes, POSTGRES_PORT)
    # TLS or nothing, said explicitly rather than left to the engine version's default.
    db_parameters = aws.rds.ParameterGroup(
        "maestro",
        family=f"postgres{POSTGRES_VERSION}",
        description="fleetplane maestro: TLS required, SCRAM passwords",
        parameters=[
            {"name": "rds.force_ssl", "value": "1"},
            {"name": "password_encryption", "value": "scram-sha-256"},
        ],
        tags=_tags("maestro"),
    )
    db = aws.rds.Instance(
        "maestro",
        engine="postgres",
        engine_version=POSTGRES_VERSION,
        instance_class=config.db_instance_class,
        allocated_storage=50,
        db_name="maestro",
        username="maestro",
        password=db_password,
        parameter_group_name=db_parameters.name,
        db_subnet_group_name=aws.rds.SubnetGroup(
            "maestro", subnet_ids=private_ids, tags=_tags("maestro")
        ).name,
        vpc_security_group_ids=[db_sg.id],
        publicly_accessible=False,
        storage_encrypted=True,
        backup_retention_period=7,
        final_snapshot_identifier="fleetplane-maestro-final",
        tags=_tags("maestro"),
    )

    platform_tls = aws_tls.create(
        {
            secret: (
                who,
                aws_platform.server_dns_names(config.maestro_hostname) if who.kind == "service" else [],
            )
            for secret, who in aws_platform.IDENTITIES.items()
        }
    )
    kafka_sg = _reachable_from_nodes("kafka", vpc.id, nodes, KAFKA_PORT)
    # Without it, a topic no ACL names is open to every authenticated client; the server creates
    # the ACLs that name who may read and write what.
    kafka_config = aws.msk.Configuration(
        "kafka",
        kafka_versions=[config.kafka_version],
        server_properties="allow.everyone.if.no.acl.found=false\n",
    )
    kafka = aws.msk.Cluster(
        "kafka",
        cluster_name="fleetplane",
        kafka_version=config.kafka_version,
        number_of_broker_nodes=config.kafka_brokers,
        broker_node_group_info={
            "instance_type": "kafka.m5.large",
            "client_subnets": private_ids,
            "security_groups": [kafka_sg.id],
            "storage_info": {"ebs_storage_info": {"volume_size": 100}},
        },
        encryption_info={"encryption_in_transit": {"client_broker": "TLS", "in_cluster": True}},
        # Clients prove who they are with certificates the stack's private CA chains to; Kafka's
        # authorizer knows them by their subject.
        client_authentication={
            "tls": {"certificate_authority_arns": [platform_tls.root.arn]},
            "unauthenticated": False,
        },
        configuration_info={"arn": kafka_config.arn, "revision": kafka_config.latest_revision},
        tags=_tags("kafka"),
    )

    dsn: pulumi.Output[str] = db.address.apply(postgres_dsn)
    provider = k8s.Provider("management", kubeconfig=cluster.kubeconfig_json)
    region = aws.get_region().region
    aws_platform.install(
        provider,
        aws_platform.PlatformSettings(
            image_registry=config.image_registry,
            image_tag=config.image_tag,
            dsn=dsn,
            db_password=db_password,
            db_ca_bundle=db_ca_bundle,
            kafka=kafka.bootstrap_brokers_tls,
            kafka_ca_bundle=kafka_ca_bundle,
            aws_region=region,
            source_ranges=list(config.source_ranges),
            tls=platform_tls,
        ),
    )
    host = config.maestro_hostname or f"{aws_platform.SERVICE}.{aws_platform.NAMESPACE}.svc"
    maestro_address = pulumi.Output.from_input(f"{host}:{aws_platform.MAESTRO_PORT}")

    pulumi.export("vpcId", vpc.id)
    pulumi.export("clusterName", CLUSTER_NAME)
    pulumi.export("kubeconfig", pulumi.Output.secret(cluster.kubeconfig_json))
    pulumi.export("postgresEndpoint", db.endpoint)
    pulumi.export("kafkaBootstrap", kafka.bootstrap_brokers_tls)
    pulumi.export("maestroAddress", maestro_address)
    # the load balancer's own name: `kubectl -n fleetplane get service <maestroService>`
    pulumi.export("maestroService", aws_platform.SERVICE)
    pulumi.export("platformNamespace", aws_platform.NAMESPACE)
    pulumi.export("privateCaArn", platform_tls.root.arn)
    pulumi.export("platformCaCertificate", platform_tls.ca_cert)
    return Created(vpc, cluster, db, db_sg, kafka, kafka_sg, dsn, maestro_address)


def _reachable_from_nodes(
    name: str, vpc_id: pulumi.Input[str], nodes: pulumi.Input[str], port: int
) -> aws.ec2.SecurityGroup:
    """A security group that lets only the cluster's nodes in, on ``port`` only."""
    return aws.ec2.SecurityGroup(
        name,
        vpc_id=vpc_id,
        description=f"fleetplane {name}: port {port} from the management cluster's nodes only",
        ingress=[{"protocol": "tcp", "from_port": port, "to_port": port, "security_groups": [nodes]}],
        egress=[{"protocol": "-1", "from_port": 0, "to_port": 0, "cidr_blocks": ["0.0.0.0/0"]}],
        tags=_tags(name),
    )


def read_db_password(reader: Reader, stored_as_secret: bool) -> str:
    """The required ``dbPassword``; a refusal never repeats the value."""
    expected = "8 to 128 printable ASCII characters except / ' \" @ and space, set with --secret"
    fix = "--secret <password>"
    raw = reader.get("dbPassword")
    if raw is None or raw == "":
        raise ConfigError("dbPassword", "", expected, fix)
    # A plain value would sit unencrypted in Pulumi.<stack>.yaml, which is committed.
    if not stored_as_secret:
        raise ConfigError("dbPassword", "<set without --secret>", expected, fix)
    if not re.fullmatch(DB_PASSWORD_PATTERN, raw):
        raise ConfigError("dbPassword", "<secret>", expected, fix)
    return raw


def read_db_ca_bundle(reader: Reader) -> str:
    """The required ``dbCaBundle``: the PEM text of the file it names, holding certificates only."""
    return _read_ca_bundle(
        reader,
        "dbCaBundle",
        f"a PEM file of RDS's certificate authorities ({RDS_CA_BUNDLE_URL})",
        "global-bundle.pem",
    )


def read_kafka_ca_bundle(reader: Reader) -> str:
    """The required ``kafkaCaBundle``: the CAs MSK's brokers' certificates are verified against."""
    return _read_ca_bundle(
        reader,
        "kafkaCaBundle",
        f"a PEM file of Amazon Trust Services' root CAs ({AMAZON_TRUST_URL})",
        "amazon-root-cas.pem",
    )


def _read_ca_bundle(reader: Reader, key: str, expected: str, fix: str) -> str:
    raw = reader.get(key)
    if raw is None or raw == "":
        raise ConfigError(key, "", expected, fix)
    try:
        text = Path(raw).expanduser().read_text()
    except (OSError, UnicodeDecodeError):
        raise ConfigError(key, raw, f"a readable file: {expected}", fix) from None
    try:
        certificates = x509.load_pem_x509_certificates(text.encode())
    except ValueError:
        certificates = []
    if not certificates or "PRIVATE KEY" in text:
        raise ConfigError(key, raw, f"PEM certificates only: {expected}", fix)
    return text


def postgres_dsn(address: str) -> str:
    """Maestro's DSN: TLS with RDS's certificate and name verified against the bundle the pods
    mount; no password (libpq reads it from PGPASSWORD, which the pods get from a Secret)."""
    return (
        f"postgresql://maestro@{address}:{POSTGRES_PORT}/maestro"
        f"?sslmode=verify-full&sslrootcert={aws_platform.DB_CA_FILE}"
    )


def main(reader: Reader, config: pulumi.Config) -> None:
    """Read and check the config, the password included, then create it all."""
    settings = AwsConfig.read(reader)
    password = read_db_password(reader, pulumi.runtime.is_config_secret(config.full_key("dbPassword")))
    run(settings, pulumi.Output.secret(password), read_db_ca_bundle(reader), read_kafka_ca_bundle(reader))
