"""The platform's processes on a local management cluster, started as a user would start them.

``fleetplane maestro server``, ``fleetplane provisioner run`` and ``fleetplane controllers run``
as detached processes of a ``localinfra`` environment, each waited for until it is ready: the
bootstrap's local stack (``bootstrap/local_components.py``) starts them, and the end-to-end tests
take the controllers' arguments from here.
"""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from localinfra import ports, process
from localinfra.environment import Environment
from maestro.wire import stubs

INVENTORY_NAMESPACE = "argocd"
#: Labels on every worker's cluster Secret; the demo's ApplicationSet selects clusters by them.
CLUSTER_LABELS = {"fleetplane.io/demo": "true"}
START_TIMEOUT = 120.0


def fleetplane_argv(*args: str) -> list[str]:
    """The ``fleetplane`` command of this interpreter (its console script, else ``-m fleetplane.cli``)."""
    script = Path(sys.executable).parent / "fleetplane"
    prefix = [str(script)] if script.exists() else [sys.executable, "-m", "fleetplane.cli"]
    return [*prefix, *args]


def start_server(
    env: Environment, dsn: str, kafka: str, log: Path, *, port: int = 0, server_id: str = "maestro-demo"
) -> str:
    """Start ``fleetplane maestro server`` (it migrates its schema first) on ``port`` (0: a free one)
    and wait until it serves gRPC; returns its address (also the environment's ``maestro`` endpoint)."""
    port = port or ports.free_port()
    argv = fleetplane_argv(
        "maestro",
        "server",
        "--dsn",
        dsn,
        "--kafka",
        kafka,
        "--port",
        str(port),
        "--server-id",
        server_id,
        # Argo CD deletes an Application's resources before the Application goes: wait for it.
        "--deletion-grace",
        "300",
        "--log-level",
        "info",
    )
    record = env.add_process(process.spawn("maestro/server", argv, log))
    address = f"127.0.0.1:{port}"
    process.wait_until(record, lambda: _serving(address), timeout=START_TIMEOUT, what="serving gRPC")
    env.set_endpoint("maestro", address=address, dsn=dsn)
    return address


def _serving(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=stubs.QUERY_SERVICE), timeout=2
        )
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def controllers_args(kubeconfig: Path, maestro: str, *extra: str) -> list[str]:
    """``fleetplane controllers run`` with short periods, so repairs and rollups show up fast (the
    demo's and the end-to-end tests' settings)."""
    return [
        "controllers",
        "run",
        "--kubeconfig",
        str(kubeconfig),
        "--maestro",
        maestro,
        "--inventory-namespace",
        INVENTORY_NAMESPACE,
        "--resync",
        "20",
        "--status-list",
        "15",
        "--log-level",
        "info",
        *extra,
    ]


def start_controllers(env: Environment, hub_kubeconfig: Path, maestro: str, log: Path) -> None:
    """``fleetplane controllers run`` on the hub, waited for until kopf's liveness probe answers."""
    _start_operator(env, "hub/controllers", controllers_args(hub_kubeconfig, maestro), log)


def start_provisioner(
    env: Environment, hub_kubeconfig: Path, maestro: str, kafka: str, local_env: Path, log: Path
) -> None:
    """``fleetplane provisioner run`` serving the ``local`` provider in ``local_env`` (whose etcd the
    new clusters share), waited for until kopf's liveness probe answers."""
    args = [
        "provisioner",
        "run",
        "--kubeconfig",
        str(hub_kubeconfig),
        "--maestro",
        maestro,
        "--kafka",
        kafka,
        "--local-env",
        str(local_env),
        "--inventory-namespace",
        INVENTORY_NAMESPACE,
        "--log-level",
        "info",
    ]
    _start_operator(env, "hub/provisioner", args, log)


def _start_operator(env: Environment, name: str, args: list[str], log: Path) -> None:
    liveness = f"http://127.0.0.1:{ports.free_port()}/healthz"
    record = env.add_process(process.spawn(name, fleetplane_argv(*args, "--liveness", liveness), log))

    def live() -> bool:
        with urllib.request.urlopen(liveness, timeout=3) as resp:
            return bool(resp.status == 200)

    process.wait_until(record, live, timeout=START_TIMEOUT, what="live (kopf's liveness probe)")
