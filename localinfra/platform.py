"""The platform's own processes on this machine, started as a user starts them.

``fleetplane maestro server``, ``fleetplane controllers run`` and ``fleetplane provisioner run`` run
as detached processes of an environment, each waited for until it is ready: the bootstrap's local
stack, the end-to-end tests and the benchmarks start them here. This layer knows the commands and
their options, not the platform's code: a server is ready when gRPC's health service says it
serves, an operator when its ``/readyz`` answers 200 as the leader of its replicas (a standby's says
so).

Each process gets its own identity from an environment's CA (``pki.ensure_identity_files``) and
finds it with ``--tls-dir``; a process given no identity runs plaintext (``--insecure``). The local
platform's server and operators serve their probes and Prometheus metrics on free loopback ports,
named in their command lines (``metrics_url`` reads them back).
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from localinfra import argocd, pki, ports, process
from localinfra.environment import Environment
from localinfra.errors import InfraError
from trust import files
from trust.identity import Identity

START_TIMEOUT = 120.0
#: how a standby operator's ``/readyz`` begins (200: ready to take over, leading nothing yet)
STANDBY = "standby:"
SERVER_IDENTITY = Identity.service("maestro-server")
#: what a user of a local environment runs `fleetplane maestro ...` as
USER_IDENTITY = Identity.admin("local-admin")
#: the names the server's certificate is for: where local processes connect
SERVER_HOSTS = ("127.0.0.1", "localhost")
#: the hub's inventory: Argo CD's cluster Secrets, in Argo CD's namespace
INVENTORY_NAMESPACE = argocd.NAMESPACE


def identity(env: Environment, who: Identity, *, server: bool = False) -> files.TLSFiles:
    """``who``'s certificate from ``env``'s CA, in ``<env>/identities/<kind>-<name>/`` (the folder
    to pass as ``--tls-dir``, for Maestro and Kafka alike), issued once and kept while valid: a
    process started from it may still be reading it."""
    return pki.ensure_identity_files(env, who, hosts=SERVER_HOSTS if server else (), server=server)


def tls_dir(tls: files.TLSFiles) -> str:
    return str(tls.ca.parent)


def access_args(tls: files.TLSFiles | None) -> list[str]:
    """How a process is told who it is: its identity folder, or plaintext when it has none."""
    return ["--insecure"] if tls is None else ["--tls-dir", tls_dir(tls)]


def fleetplane_argv(*args: str) -> list[str]:
    """The ``fleetplane`` command of this interpreter (its console script, else ``-m fleetplane.cli``)."""
    script = Path(sys.executable).parent / "fleetplane"
    prefix = [str(script)] if script.exists() else [sys.executable, "-m", "fleetplane.cli"]
    return [*prefix, *args]


def launch(env: Environment, name: str, args: Sequence[str], log: Path) -> process.ProcessRecord:
    """``fleetplane <args>`` as a process of ``env``, not waited for."""
    return env.add_process(process.spawn(name, fleetplane_argv(*args), log))


def probe_args() -> tuple[list[str], int]:
    """``--health-port`` and ``--metrics-port`` on free loopback ports; the health port."""
    health = ports.free_port()
    return ["--health-port", str(health), "--metrics-port", str(ports.free_port())], health


def metrics_url(argv: Sequence[str]) -> str | None:
    """Where a fleetplane process started with ``argv`` serves ``/metrics`` (None: it does not)."""
    args = list(argv)
    if "--metrics-port" not in args:
        return None
    host = args[args.index("--metrics-host") + 1] if "--metrics-host" in args else "127.0.0.1"
    return f"http://{host}:{args[args.index('--metrics-port') + 1]}/metrics"


# --- the Maestro server ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    """A ``fleetplane maestro server`` process and where it listens."""

    record: process.ProcessRecord
    address: str
    #: the identity it serves with (None: plaintext); it also passes its own handshake
    tls: files.TLSFiles | None

    def wait(self, timeout: float = START_TIMEOUT) -> None:
        """Until it serves gRPC; fails fast, with its log, if it exits first."""
        process.wait_until(
            self.record, lambda: serving(self.address, self.tls), timeout=timeout, what="serving gRPC"
        )


def launch_server(
    env: Environment,
    name: str,
    log: Path,
    *,
    dsn: str,
    kafka: str,
    tls: files.TLSFiles | None,
    server_id: str,
    port: int = 0,
    log_level: str = "info",
    extra: Sequence[str] = (),
) -> Server:
    """``fleetplane maestro server`` (it migrates its schema first) on ``port`` (0: a free one), not
    waited for: replicas start side by side, then each is waited for (``Server.wait``)."""
    port = port or ports.free_port()
    args = [
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
        "--log-level",
        log_level,
        *access_args(tls),
        *extra,
    ]
    return Server(launch(env, name, args, log), f"127.0.0.1:{port}", tls)


def serving(address: str, tls: files.TLSFiles | None) -> bool:
    """Whether the server at ``address`` says it serves. Its health service answers anyone who
    passes the handshake (``tls``: an identity of the server's CA; None for a plaintext server)."""
    if tls is None:
        channel = grpc.insecure_channel(address)
    else:
        ca, cert, key = tls.read()
        credentials = grpc.ssl_channel_credentials(ca, private_key=key, certificate_chain=cert)
        channel = grpc.secure_channel(address, credentials)
    with channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


def start_server(
    env: Environment,
    dsn: str,
    kafka: str,
    log: Path,
    *,
    port: int = 0,
    server_id: str = "maestro-demo",
    identities: Environment | None = None,
    hub_kubeconfig: Path | None = None,
) -> str:
    """The local platform's server, serving gRPC; returns its address (also the environment's
    ``maestro`` endpoint).

    Its certificate comes from the CA of ``identities`` (default ``env``), the one every client of
    it must be issued by. With ``hub_kubeconfig`` it also takes that hub's tokens, on a port of
    their own (the endpoint's ``token_address``)."""
    extra = [
        # Argo CD deletes an Application's resources before the Application goes: wait for it.
        "--deletion-grace",
        "300",
        *probe_args()[0],
    ]
    token_address = ""
    if hub_kubeconfig is not None:
        token_port = ports.free_port()
        extra += ["--token-port", str(token_port), "--hub-kubeconfig", str(hub_kubeconfig)]
        token_address = f"127.0.0.1:{token_port}"
    server = launch_server(
        env,
        "maestro/server",
        log,
        dsn=dsn,
        kafka=kafka,
        tls=identity(identities or env, SERVER_IDENTITY, server=True),
        server_id=server_id,
        port=port,
        extra=extra,
    )
    server.wait()
    env.set_endpoint("maestro", address=server.address, dsn=dsn, token_address=token_address)
    return server.address


# --- the operators: hub controllers and provisioner --------------------------------------------------


def controllers_args(kubeconfig: Path, maestro: str, tls: files.TLSFiles, *extra: str) -> list[str]:
    """``fleetplane controllers run`` with short periods, so repairs and rollups show up fast (the
    local platform's and the end-to-end tests' settings)."""
    return [
        "controllers",
        "run",
        "--kubeconfig",
        str(kubeconfig),
        "--maestro",
        maestro,
        "--tls-dir",
        tls_dir(tls),
        "--inventory-namespace",
        INVENTORY_NAMESPACE,
        "--resync",
        "20",
        "--status-list",
        "15",
        "--git-poll",
        "10",
        "--log-level",
        "info",
        *extra,
    ]


def start_controllers(
    env: Environment, hub_kubeconfig: Path, maestro: str, log: Path, tls: files.TLSFiles, *extra: str
) -> None:
    """``fleetplane controllers run`` on the hub with the identity ``tls`` (and ``extra``
    arguments), waited for until it is ready."""
    start_operator(env, "hub/controllers", controllers_args(hub_kubeconfig, maestro, tls, *extra), log)


def start_provisioner(
    env: Environment,
    hub_kubeconfig: Path,
    maestro: str,
    kafka: str,
    local_env: Path,
    log: Path,
    tls: files.TLSFiles,
) -> None:
    """``fleetplane provisioner run`` serving the ``local`` provider in ``local_env`` (whose etcd the
    new clusters share, and whose CA issues its agents' identities) with the identity ``tls``,
    waited for until it is ready."""
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
        "--tls-dir",
        tls_dir(tls),
        "--inventory-namespace",
        INVENTORY_NAMESPACE,
        "--log-level",
        "info",
    ]
    start_operator(env, "hub/provisioner", args, log)


def start_operator(env: Environment, name: str, args: Sequence[str], log: Path) -> process.ProcessRecord:
    """A kopf operator (``fleetplane <args>``) with its probes and metrics on free loopback ports,
    waited for until its ``/readyz`` answers 200 as the leader; one that does not get ready says why.

    It elects itself leader on its Lease at once, unless the Lease is still held by a replica that
    died without releasing it (killed, say): it then stands by (ready, and saying so) until that
    lease runs out, ``--leader-elect-lease-duration`` (15 s) at most, well within the wait."""
    probes, health = probe_args()
    record = launch(env, name, [*args, *probes], log)
    said: list[str] = []

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{health}/readyz", timeout=3) as resp:
                body = resp.read().decode(errors="replace").strip()
        except urllib.error.HTTPError as exc:
            said[:] = [exc.read().decode(errors="replace").strip()]
            return False
        if body.startswith(STANDBY):
            said[:] = [body]
            return False
        return bool(resp.status == 200)

    try:
        process.wait_until(record, ready, timeout=START_TIMEOUT, what="ready (its /readyz)")
    except InfraError as exc:
        if not said:
            raise
        raise InfraError(
            f"{exc.what}; it says: {'; '.join(said[0].splitlines())}", exc.fix, exc.log_tail
        ) from exc
    return record
