"""The ``local`` stack: the management cluster and the platform on this machine.

Config (``pulumi config set fleetplane:<key> <value>``; defaults in ``Pulumi.yaml``):
- ``demoClusters`` (1..8, default 2): how many cluster claims the demo's ``claims`` file asks for;
- ``maestroPort`` (0 or 1024..65535, default 0 = a free port chosen once and kept): Maestro gRPC;
- ``environment`` (default ``pulumi-<stack>``): the folder under ``~/.cache/fleetplane/envs``
  that holds the processes' state, data and logs;
- ``kubernetesVersion``, ``argocdVersion``, ``kafkaVersion``: documented pins; anything but the
  versions ``localinfra.versions`` builds is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from bootstrap.local_resources import LocalPart
from bootstrap.stack_config import Reader
from localinfra import paths, versions


@dataclass(frozen=True)
class LocalConfig:
    demo_clusters: int
    maestro_port: int
    environment: str

    @classmethod
    def read(cls, reader: Reader, stack: str) -> LocalConfig:
        reader.pinned("kubernetesVersion", versions.KUBERNETES)
        reader.pinned("argocdVersion", versions.ARGOCD)
        reader.pinned("kafkaVersion", versions.KAFKA)
        name = reader.string(
            "environment",
            f"pulumi-{stack}",
            r"[a-z0-9][a-z0-9._-]{0,62}",
            "a folder name: a-z, 0-9, '.', '_', '-'",
        )
        return cls(
            demo_clusters=reader.integer("demoClusters", 2, 1, 8),
            maestro_port=reader.port("maestroPort"),
            environment=str(paths.envs_dir() / name),
        )


def run(config: LocalConfig) -> None:
    env = config.environment
    cluster = LocalPart("management-cluster", env, outputs=("kubeconfig", "server", "etcd"))
    pg = LocalPart("postgres", env, outputs=("dsn",))
    kafka = LocalPart("kafka", env, outputs=("bootstrap",))
    kubeconfig = cluster.out("kubeconfig")
    platform = LocalPart("platform", env, {"kubeconfig": kubeconfig}, outputs=("compositions",))
    maestro = LocalPart(
        "maestro-server",
        env,
        {"dsn": pg.out("dsn"), "kafka": kafka.out("bootstrap"), "port": config.maestro_port},
        outputs=("address", "log"),
    )
    operators = {"kubeconfig": kubeconfig, "maestro": maestro.out("address"), "kafka": kafka.out("bootstrap")}
    after_install = pulumi.ResourceOptions(depends_on=[platform])
    LocalPart("provisioner", env, operators, outputs=("log",), opts=after_install)
    argocd_server = LocalPart(
        "hub-argocd",
        env,
        {"kubeconfig": kubeconfig},
        outputs=("url", "redis", "redisPassword", "passwordCommand", "loginCommand"),
        opts=after_install,
    )
    trees = {
        "argocdRedis": argocd_server.out("redis"),
        "argocdRedisPassword": argocd_server.out("redisPassword"),
    }
    LocalPart("controllers", env, {**operators, **trees}, outputs=("log",), opts=after_install)
    demo = LocalPart("demo", env, {"clusters": config.demo_clusters}, outputs=("repo", "claims"))

    pulumi.export("kubeconfig", kubeconfig)
    pulumi.export("hubServer", cluster.out("server"))
    pulumi.export("maestroAddress", maestro.out("address"))
    pulumi.export("kafkaBootstrap", kafka.out("bootstrap"))
    pulumi.export("postgresDsn", pulumi.Output.secret(pg.out("dsn")))
    pulumi.export("appsRepo", demo.out("repo"))
    pulumi.export("claimsFile", demo.out("claims"))
    pulumi.export("environment", env)
    pulumi.export("argocdUrl", argocd_server.out("url"))
    pulumi.export("argocdPasswordCommand", argocd_server.out("passwordCommand"))
    pulumi.export("argocdLogin", argocd_server.out("loginCommand"))
