"""``pulumi up`` of the bootstrap's local stack with the Pulumi CLI built into the cache, as a
platform engineer runs it (a stack of its own in a temporary file backend).

Cases, in order on one stack:
- a config value out of range stops ``pulumi preview`` with a message naming the key, and a value
  of the wrong type is refused by Pulumi's typed project config, naming the key too;
- ``pulumi up`` creates the platform: the provisioner's CRDs and the default composition are
  served, the provisioner generated the claim kind from the definition, Maestro's gRPC health
  says SERVING, the provisioner and the controllers are alive, the outputs say where things are
  (the PostgreSQL DSN as a secret: Maestro's own role, verify-full, its password in a passfile);
- a second ``pulumi up`` changes nothing (``preview --expect-no-changes`` passes);
- after the Maestro server is killed, ``pulumi refresh`` shows the drift, and ``pulumi up``
  restarts it on the same address;
- ``pulumi destroy`` leaves no process alive, no port listening and no file in the environment.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from psycopg.conninfo import conninfo_to_dict

from localinfra import build, kubectl, platform, process, pulumi_cli
from localinfra.environment import Environment
from localinfra.progress import stderr_reporter
from maestro.wire import channels, stubs

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pulumi_cli.Stack]:
    build.ensure_all(stderr_reporter)
    backend = tmp_path_factory.mktemp("pulumi-state")
    under_test = pulumi_cli.Stack(f"it-{os.getpid()}", backend=f"file://{backend}")
    under_test.select()
    try:
        yield under_test
    finally:
        under_test.run("destroy", "--yes", "--skip-preview", check=False)
        under_test.remove()
        Environment.named(f"pulumi-{under_test.name}").down()


def _maestro_serving(address: str, environment: str) -> bool:
    # The stack's server takes certificates of the stack's CA alone: a user's, issued by it.
    user = platform.identity(Environment(Path(environment)), platform.USER_IDENTITY)
    with channels.channel(address, channels.Credentials(tls=user)) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=stubs.QUERY_SERVICE), timeout=5
        )
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def _listening(address: str) -> bool:
    host, port = address.replace("https://", "").rsplit(":", 1)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port))) == 0


def test_bad_config_is_refused_naming_the_key(stack: pulumi_cli.Stack) -> None:
    stack.run("config", "set", "fleetplane:demoClusters", "0")
    refused = stack.run("preview", check=False)
    assert refused.returncode != 0
    assert "fleetplane:demoClusters = '0' is not valid: expected an integer from 1 to 8" in refused.stdout
    stack.run("config", "set", "fleetplane:demoClusters", "many")
    refused = stack.run("preview", check=False)
    assert refused.returncode != 0
    assert "fleetplane:demoClusters" in refused.stdout + refused.stderr
    stack.run("config", "rm", "fleetplane:demoClusters")


def test_up_serves_the_platform(stack: pulumi_cli.Stack) -> None:
    stack.run("up", "--yes", "--skip-preview")
    out = stack.outputs()
    kubeconfig = Path(out["kubeconfig"])
    crds = kubectl.run(kubeconfig, "get", "crds", "-o", "name")
    for crd in (
        "compositeresourcedefinitions.fleetplane.io",
        "compositions.fleetplane.io",
        "applicationsets.argoproj.io",
    ):
        assert crd in crds
    assert "workerclusters.platform.fleetplane.io" in kubectl.run(
        kubeconfig, "get", "compositeresourcedefinitions"
    )
    # The claim kind exists only once the running provisioner generated it from the definition.
    kubectl.wait_established(kubeconfig, "clusterclaims.platform.fleetplane.io", timeout=60)
    assert _maestro_serving(out["maestroAddress"], out["environment"])
    root = Environment(Path(out["environment"]))
    names = {r.name for r in root.all_processes() if process.is_alive(r)}
    assert {"etcd", "hub/kube-apiserver", "maestro/server", "hub/provisioner", "hub/controllers"} <= names
    assert out["postgresDsn"] == "[secret]"  # shown only when asked for
    shown = stack.run("stack", "output", "postgresDsn", "--show-secrets").stdout.strip()
    dsn = conninfo_to_dict(shown)
    assert shown.startswith("postgresql://") and "password" not in dsn
    assert (dsn["user"], dsn["dbname"], dsn["sslmode"]) == ("maestro", "maestro", "verify-full")
    assert Path(str(dsn["passfile"])).is_file() and Path(str(dsn["sslrootcert"])).is_file()
    assert Path(out["claimsFile"]).is_file() and out["appsRepo"].startswith("file://")


def test_second_up_changes_nothing(stack: pulumi_cli.Stack) -> None:
    again = stack.run("up", "--yes", "--skip-preview")
    assert "10 unchanged" in again.stdout
    stack.run("preview", "--expect-no-changes")


def test_refresh_shows_a_killed_server_and_up_restarts_it(stack: pulumi_cli.Stack) -> None:
    out = stack.outputs()
    maestro = Environment(Path(out["environment"])).child("maestro")
    process.kill_hard(maestro.processes["maestro/server"])
    refreshed = stack.run("refresh", "--yes", "--skip-preview")
    assert "~ 1 updated" in refreshed.stdout, refreshed.stdout
    stack.run("up", "--yes", "--skip-preview")
    assert stack.outputs()["maestroAddress"] == out["maestroAddress"]
    assert _maestro_serving(out["maestroAddress"], out["environment"])
    stack.run("preview", "--expect-no-changes")


def test_destroy_leaves_nothing_behind(stack: pulumi_cli.Stack) -> None:
    out: dict[str, Any] = stack.outputs()
    root = Environment(Path(out["environment"]))
    records = root.all_processes()
    stack.run("destroy", "--yes", "--skip-preview")
    assert not [r.name for r in records if process.is_alive(r)]
    for address in (out["maestroAddress"], out["kafkaBootstrap"], out["hubServer"]):
        assert not _listening(address), address
    assert not root.root.exists()
