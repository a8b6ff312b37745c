"""Shared fixtures: one real local environment per test session, started lazily.

A unit test asks for none of these and starts nothing. An integration test asks for what it needs
(``pg_dsn``, ``kafka_bootstrap``, ``hub``, ``argocd_worker``...) and the first one to ask starts it
on free loopback ports; everything is stopped when the session ends. When a test fails, the last
lines of the log of every process that died are attached to its report.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from localinfra import argocd, build, etcd, kafka, kube, postgres, process
from localinfra.environment import Environment
from localinfra.progress import stderr_reporter

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
        problems = _env.down()
        _env = None
        assert not problems, problems


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
def kafka_bootstrap(infra_env: Environment) -> str:
    return kafka.start(infra_env).bootstrap


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
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.failed and _env is not None:
        for record in _env.dead_processes():
            report.sections.append((f"log of {record.name} (dead)", process.log_tail(record.log, 40)))
        logs = "\n".join(f"{r.name}: {r.log}" for r in _env.processes.values())
        report.sections.append(("process logs", logs))
    return report
