"""Shared fixtures: one real local environment per test session, started lazily.

A unit test asks for none of these and starts nothing. An integration test asks for what it needs
(``pg_dsn``, ``kafka_broker``, ``hub``, ``argocd_worker``...) and the first one to ask starts it
on free loopback ports; everything is stopped when the session ends. When a test fails, the last
lines of the log of every process that died are attached to its report. Before the environment is
torn down, every log it holds is scanned for credentials (``tests.leaks``): a leak fails the run.

Kafka is secured as in production: TLS everywhere, a certificate per client from the session
environment's CA, ACLs. ``kafka_settings`` is the Maestro server's identity (a super user);
``kafka_as(identity)`` any other (a cluster's, say), which has only the rights ACLs give it.
``kafka_ha`` is a second Kafka of three brokers, for the tests that kill one (``kafka_ha_as``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest

from localinfra import argocd, build, etcd, kafka, kafka_cluster, kube, pki, ports, postgres, process, redis
from localinfra.environment import Environment
from localinfra.progress import stderr_reporter
from maestro.transport.connection import KafkaSettings
from tests import leaks
from trust.identity import Identity

KafkaAs = Callable[[Identity], KafkaSettings]

_env: Environment | None = None


@pytest.fixture(scope="session")
def infra_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Environment]:
    global _env
    build.ensure_all(stderr_reporter)
    root = Path(os.environ.get("FLEETPLANE_TEST_ENV_ROOT") or tmp_path_factory.mktemp("fleet"))
    _env = Environment(root / "env")
    try:
        yield _env
    finally:
        leaked = leaks.scan_logs(_env.root, _generated_secrets(_env.root))
        problems = _env.down()
        _env = None
        assert not problems, problems
        assert not leaked, f"credentials in the processes' logs: {leaked}"


def _generated_secrets(root: Path) -> list[str]:
    """The passwords this run generated (PostgreSQL's passfile lines end in the password; a Redis's
    password is the file ``auth`` of its credentials folder)."""
    found = []
    for passfile in root.rglob("passfile") if root.exists() else []:
        found += [line.rsplit(":", 1)[-1] for line in passfile.read_text().splitlines() if ":" in line]
    for auth in root.rglob(f"{redis.CREDENTIALS_DIR}/auth") if root.exists() else []:
        found.append(auth.read_text().strip())
    return found


@pytest.fixture(scope="session")
def etcd_url(infra_env: Environment) -> str:
    return etcd.start(infra_env)


@pytest.fixture(scope="session")
def pg_server(infra_env: Environment) -> postgres.Postgres:
    return postgres.start(infra_env, durable=False)


_db_counter = itertools.count()


@pytest.fixture
def pg_dsn(pg_server: postgres.Postgres) -> str:
    """A DSN to a fresh, empty database: tests never see each other's rows."""
    return pg_server.create_database(f"test_{os.getpid()}_{next(_db_counter)}")


@pytest.fixture(scope="session")
def kafka_broker(infra_env: Environment) -> kafka.Kafka:
    return kafka.start(infra_env)


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: kafka.Kafka) -> str:
    return kafka_broker.bootstrap


def clients_of(env: Environment, brokers: kafka.Kafka) -> KafkaAs:
    """Kafka settings for ``brokers`` of a client speaking as an identity issued by ``env``'s CA."""

    def settings(who: Identity) -> KafkaSettings:
        hosts = ("127.0.0.1", "localhost")
        return KafkaSettings.secure(
            brokers.bootstrap, pki.ensure_identity_files(env, who, hosts=hosts, server=True)
        )

    return settings


@pytest.fixture(scope="session")
def kafka_as(infra_env: Environment, kafka_broker: kafka.Kafka) -> KafkaAs:
    """Kafka settings of a client speaking as an identity issued by the environment's CA."""
    return clients_of(infra_env, kafka_broker)


@pytest.fixture(scope="session")
def kafka_ha(infra_env: Environment) -> kafka_cluster.Brokers:
    """A second Kafka of three brokers (each a controller too), secured as ``kafka_broker``, for the
    tests that kill one: `Brokers` has their pids, ``kill(i)`` (-9) and ``restart(i)``. Small
    heaps: three JVMs share the machine with everything else. Each broker has a second listener a
    relay may stand in front of (``kafka_config.Relayed``): the chaos suite cuts one agent off from
    the brokers by stopping its relays. Nothing listens there until a test starts them."""
    relays = [ports.free_port() for _ in range(3)]
    return kafka_cluster.start_cluster(infra_env, heap="320m", relay_ports=relays)


@pytest.fixture(scope="session")
def kafka_ha_as(infra_env: Environment, kafka_ha: kafka_cluster.Brokers) -> KafkaAs:
    """``kafka_as`` for the three-broker Kafka."""
    return clients_of(infra_env, kafka_ha.kafka)


@pytest.fixture(scope="session")
def kafka_settings(kafka_as: KafkaAs) -> KafkaSettings:
    """The Maestro server's Kafka settings: a super user, as the broker is configured."""
    return kafka_as(kafka.MAESTRO_SERVER)


@pytest.fixture(scope="session")
def hub(infra_env: Environment, etcd_url: str) -> kube.Cluster:
    cluster = kube.start(infra_env, "hub", etcd_url)
    argocd.install_crds(cluster)
    return cluster


@pytest.fixture(scope="session")
def worker_clusters(infra_env: Environment, etcd_url: str) -> list[kube.Cluster]:
    return [kube.start(infra_env, f"worker-{i}", etcd_url) for i in (1, 2)]


@pytest.fixture(scope="session")
def argocd_workers(infra_env: Environment, worker_clusters: list[kube.Cluster]) -> list[argocd.ArgoCD]:
    return [argocd.start(infra_env, c) for c in worker_clusters]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and _env is not None:
        for record in _env.dead_processes():
            report.sections.append((f"log of {record.name} (dead)", process.log_tail(record.log, 40)))
        logs = "\n".join(f"{r.name}: {r.log}" for r in _env.processes.values())
        report.sections.append(("process logs", logs))
    return report
