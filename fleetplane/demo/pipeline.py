"""The pull pipeline on a running local fleet, as detached processes of the demo's environment.

Called by ``journey.play`` once ``localinfra.fleet.up`` returned: a Maestro server
(``fleetplane maestro server``) on a ``maestro`` database of the fleet's PostgreSQL and its Kafka,
each worker registered as a Maestro consumer, one ``fleetplane maestro agent`` per worker, the
workers written into the hub's inventory (Argo CD cluster Secrets) and the hub controllers
(``fleetplane controllers run``). Every process is registered in the ``Environment``, so
``fleet.down`` (or ``fleetplane local down``) stops it with the rest.
"""

from __future__ import annotations

import base64
import sys
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from localinfra import fleet, kube, kubectl, ports, process
from localinfra.environment import Environment
from localinfra.progress import Reporter, step
from maestro.wire import stubs

INVENTORY_NAMESPACE = "argocd"
#: Labels on every worker's cluster Secret; the demo's ApplicationSet selects clusters by them.
CLUSTER_LABELS = {"fleetplane.io/demo": "true"}
START_TIMEOUT = 120.0


@dataclass(frozen=True)
class Pipeline:
    """Where the pipeline is: the Maestro address and each process's log (for error messages)."""

    maestro: str
    logs: dict[str, Path] = field(default_factory=dict)


def fleetplane_argv(*args: str) -> list[str]:
    """The ``fleetplane`` command of this interpreter (its console script, else ``-m fleetplane.cli``)."""
    script = Path(sys.executable).parent / "fleetplane"
    prefix = [str(script)] if script.exists() else [sys.executable, "-m", "fleetplane.cli"]
    return [*prefix, *args]


def start(env: Environment, running: fleet.Fleet, report: Reporter) -> Pipeline:
    """Start every part of the pipeline, each waited for until it is ready; returns where it is."""
    folder = env.path("pipeline")
    logs: dict[str, Path] = {}
    with step(report, "starting the Maestro server"):
        dsn = running.postgres.create_database("maestro")
        address = start_server(env, dsn, running.kafka.bootstrap, folder / "maestro-server.log")
        logs["maestro server"] = folder / "maestro-server.log"
    with step(report, "registering the workers as Maestro consumers"):
        register_consumers(address, [w.name for w in running.workers])
    for worker in running.workers:
        with step(report, f"starting the Maestro agent of {worker.name}"):
            log = folder / f"maestro-agent-{worker.name}.log"
            _start_agent(env, running, worker, address, log)
            logs[f"agent {worker.name}"] = log
    with step(report, "writing the hub inventory (Argo CD cluster Secrets of the workers)"):
        write_inventory(running.hub, running.workers)
    with step(report, "starting the hub controllers"):
        log = folder / "controllers.log"
        start_controllers(env, running.hub.kubeconfig, address, log)
        logs["controllers"] = log
    return Pipeline(address, logs)


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


def register_consumers(address: str, names: Sequence[str]) -> None:
    """Register each cluster with Maestro (as ``fleetplane maestro consumers create`` does)."""
    with grpc.insecure_channel(address) as channel:
        query = stubs.query_grpc.MaestroQueryStub(channel)
        for name in names:
            try:
                query.CreateConsumer(stubs.query.CreateConsumerRequest(name=name), timeout=30)
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
                    raise


def _start_agent(
    env: Environment, running: fleet.Fleet, worker: kube.Cluster, server: str, log: Path
) -> None:
    argv = fleetplane_argv(
        "maestro",
        "agent",
        "--cluster",
        worker.name,
        "--kubeconfig",
        str(worker.kubeconfig),
        "--kafka",
        running.kafka.bootstrap,
        "--server",
        server,
        "--refresh",
        "2",
        "--log-level",
        "info",
    )
    record = env.add_process(process.spawn(f"{worker.name}/maestro-agent", argv, log))
    # The agent logs this line once it is assigned its partition and has resynced.
    marker = f"agent for {worker.name} reading"
    process.wait_until(
        record, lambda: marker in log.read_text(errors="replace"), timeout=START_TIMEOUT, what="reading"
    )


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


def cluster_secret(cluster: kube.Cluster) -> dict[str, Any]:
    """An Argo CD cluster Secret of the pull model: the cluster's name and server, no credentials."""
    fields = {"name": cluster.name, "server": cluster.server}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": f"cluster-{cluster.name}",
            "namespace": INVENTORY_NAMESPACE,
            "labels": {"argocd.argoproj.io/secret-type": "cluster", **CLUSTER_LABELS},
        },
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in fields.items()},
    }


def write_inventory(hub: kube.Cluster, workers: Sequence[kube.Cluster]) -> None:
    """The ``argocd`` namespace on the hub and one cluster Secret per worker (what the provisioner
    will write when it creates a cluster)."""
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": INVENTORY_NAMESPACE}}
    kubectl.apply(hub.kubeconfig, [namespace], field_manager="fleetplane-demo")
    kubectl.apply(hub.kubeconfig, [cluster_secret(w) for w in workers], field_manager="fleetplane-demo")
