"""A local fleet: PostgreSQL, Kafka, a management (hub) cluster and N worker clusters with Argo CD.

This is the one code path behind ``fleetplane local up``, the test fixtures and the demo.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from localinfra import argocd, build, etcd, kafka, kube, kubectl, postgres, process
from localinfra.environment import Environment
from localinfra.progress import Reporter, stderr_reporter, step

HUB = "hub"


def worker_name(index: int) -> str:
    return f"worker-{index}"


@dataclass
class Fleet:
    env: Environment
    postgres: postgres.Postgres
    kafka: kafka.Kafka
    hub: kube.Cluster
    workers: list[kube.Cluster] = field(default_factory=list)

    @classmethod
    def from_env(cls, env: Environment) -> Fleet:
        workers = sorted(n.removeprefix("cluster/") for n in env.endpoints if n.startswith("cluster/worker-"))
        return cls(
            env,
            postgres.Postgres.from_env(env),
            kafka.Kafka.from_env(env),
            kube.Cluster.from_env(env, HUB),
            [kube.Cluster.from_env(env, w) for w in workers],
        )


def up(
    env: Environment,
    workers: int = 2,
    *,
    report: Reporter = stderr_reporter,
    durable: bool = True,
    argo: bool = True,
    kafka_brokers: int = 1,
) -> Fleet:
    """Build what is missing, then start everything; on failure ``down`` still cleans up.
    ``kafka_brokers=3`` starts a Kafka cluster that survives the loss of a broker."""
    with step(report, "checking the cache (builds what is missing, once)"):
        build.ensure_all(report)
    with step(report, "starting etcd"):
        etcd_url = etcd.start(env)
    with step(report, "starting PostgreSQL"):
        pg = postgres.start(env, durable=durable)
    with step(report, "starting Kafka (KRaft)" + (f", {kafka_brokers} brokers" if kafka_brokers > 1 else "")):
        kf = kafka.start(env, brokers=kafka_brokers)
    with step(report, "starting the hub cluster"):
        hub = kube.start(env, HUB, etcd_url)
        # The hub serves Argo CD's CRDs so users apply ApplicationSets there; no hub Argo CD runs them.
        argocd.install_crds(hub)
    fleet = Fleet(env, pg, kf, hub)
    for i in range(1, workers + 1):
        name = worker_name(i)
        with step(report, f"starting worker cluster {name}" + (" with Argo CD" if argo else "")):
            cluster = kube.start(env, name, etcd_url)
            if argo:
                argocd.start(env, cluster)
        fleet.workers.append(cluster)
    return fleet


def status(env: Environment) -> list[dict[str, Any]]:
    """One row per process: its name, pid, whether it is alive, its log and its command line."""
    return [
        {"name": r.name, "pid": r.pid, "alive": process.is_alive(r), "log": r.log, "argv": list(r.argv)}
        for r in env.processes.values()
    ]


def down(env: Environment) -> list[str]:
    return env.down()


def apply_to(cluster: kube.Cluster, objects: list[dict[str, Any]]) -> None:
    kubectl.apply(cluster.kubeconfig, objects)
