"""The pull pipeline end to end, on real components, shared by the tests of one module.

``pull_fleet`` is the hub (Argo CD's CRDs, no Argo CD) and two worker clusters, each with a real
Argo CD (``argocd_workers``) and a real Maestro agent running in this test's event loop, a Maestro
server on its own PostgreSQL database and Kafka topics, both workers registered as Maestro
consumers and as Argo CD cluster Secrets on the hub, and the hub controllers running as
``fleetplane controllers run`` in a subprocess that tests may stop and start again (its log is
attached to every wait that times out).

The session-wide pieces (etcd, PostgreSQL, Kafka, clusters, Argo CD) come from tests/conftest.py.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest

from controllers import contract
from kubeio import rest as kuberest
from kubeio.errors import NotFoundError
from localinfra import argocd, gitrepo, hub_argocd, kube, kubectl, pki, platform, ports, postgres, process
from localinfra.environment import Environment
from maestro.agent import service as agent_service
from maestro.client import Credentials, MaestroClient
from maestro.server import app
from maestro.server.settings import ServerSettings
from maestro.transport import layout
from maestro.transport.connection import KafkaSettings
from tests.conftest import KafkaAs
from trust import authority, files
from trust.identity import Identity

T = TypeVar("T")

INVENTORY_NAMESPACE = platform.INVENTORY_NAMESPACE
SECRET_TYPE = {"argocd.argoproj.io/secret-type": "cluster"}


#: what the tests themselves call Maestro as: they register clusters and read every source's works
ADMIN = Identity.admin("e2e-admin")


@dataclasses.dataclass
class MaestroUnderTest:
    running: app.Running
    settings: ServerSettings
    #: the session environment's CA, which the server trusts and which issues every client's identity
    ca: authority.CertificateAuthority
    folder: Path
    #: Kafka settings of another identity of the session's CA (an agent's)
    kafka_as: KafkaAs

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.running.port}"

    def identity(self, who: Identity, *, server: bool = False) -> files.TLSFiles:
        """A new certificate of ``who`` in a folder of its own (``tls.ca.parent``: a ``--tls-dir``)."""
        hosts = ("127.0.0.1", "localhost") if server else ()
        target = self.folder / f"{who.kind}-{who.name}-{uuid.uuid4().hex[:6]}"
        return self.ca.issue(who, hosts=hosts, server=server).write(target, "tls", self.ca.cert_pem)

    def credentials(self, who: Identity = ADMIN) -> Credentials:
        return Credentials(tls=self.identity(who))


@dataclasses.dataclass
class PullFleet:
    hub: kube.Cluster
    workers: list[kube.Cluster]
    maestro: MaestroUnderTest
    client: MaestroClient
    controllers: Controllers
    apps_repo: str
    #: argocd-server on the hub, when the test module sets ``HUB_ARGOCD = True``
    hub_argocd: hub_argocd.HubArgoCD | None = None

    def log_tail(self, lines: int = 60) -> str:
        return process.log_tail(self.controllers.log, lines)

    async def eventually(
        self,
        what: str,
        check: Callable[[], Awaitable[tuple[bool, Any]]],
        *,
        timeout: float = 180,
        interval: float = 1.0,
    ) -> Any:
        return await eventually(what, check, self.controllers.log, timeout=timeout, interval=interval)

    async def set_cluster_secret(self, cluster: kube.Cluster, labels: dict[str, str]) -> None:
        """Register ``cluster`` in the hub's inventory (as the provisioner will), with ``labels``."""
        await asyncio.to_thread(
            kubectl.apply, self.hub.kubeconfig, [cluster_secret(cluster, labels)], field_manager="e2e"
        )

    async def delete_cluster_secret(self, cluster: kube.Cluster) -> None:
        await asyncio.to_thread(
            kubectl.run,
            self.hub.kubeconfig,
            "delete",
            "secret",
            f"cluster-{cluster.name}",
            "-n",
            INVENTORY_NAMESPACE,
            "--ignore-not-found",
        )


async def eventually(
    what: str,
    check: Callable[[], Awaitable[tuple[bool, Any]]],
    log: Path,
    *,
    timeout: float = 180,
    interval: float = 1.0,
) -> Any:
    """Poll ``check`` (returning ``(ok, seen)``) until ok; on timeout fail with what was expected,
    what was last seen and the tail of the operator's ``log``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    seen: Any = None
    while True:
        try:
            ok, seen = await check()
        except Exception as exc:  # a transient read failure is just another observation
            ok, seen = False, f"{type(exc).__name__}: {exc}"
        if ok:
            return seen
        if loop.time() > deadline:
            pytest.fail(
                f"within {timeout:.0f}s, expected: {what}\nlast seen: {seen}\n"
                f"--- {log.name} (tail) ---\n{process.log_tail(log, 60)}",
                pytrace=False,
            )
        await asyncio.sleep(interval)


class Kube:
    """Non-blocking JSON reads and writes on one cluster (the agents share this event loop)."""

    def __init__(self, cluster: kube.Cluster) -> None:
        self.rest = kuberest.KubeRest.from_kubeconfig(cluster.kubeconfig)

    async def get(self, path: str, query: list[tuple[str, str]] | None = None) -> dict[str, Any] | None:
        try:
            return await self.rest.request("GET", path, query=query or [])
        except NotFoundError:
            return None

    async def create(self, path: str, body: Mapping[str, Any]) -> None:
        await self.rest.request("POST", path, body=body)

    async def merge(self, path: str, patch: Mapping[str, Any]) -> None:
        await self.rest.request("PATCH", path, body=patch, content_type=kuberest.MERGE_PATCH)

    async def delete(self, path: str) -> None:
        with contextlib.suppress(NotFoundError):
            await self.rest.request("DELETE", path)


def pulled_application_set(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """An ApplicationSet of the hub's inventory namespace, opted in to the pull model."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {
            "name": name,
            "namespace": INVENTORY_NAMESPACE,
            "labels": {contract.PULL_LABEL: contract.PULL_LABEL_VALUE},
        },
        "spec": spec,
    }


def cluster_secret(cluster: kube.Cluster, labels: dict[str, str]) -> dict[str, Any]:
    """An Argo CD cluster Secret of the pull model: name and server, no credentials."""
    fields = {"name": cluster.name, "server": cluster.server}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": f"cluster-{cluster.name}",
            "namespace": INVENTORY_NAMESPACE,
            "labels": {**SECRET_TYPE, **labels},
        },
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in fields.items()},
    }


@pytest.fixture(scope="module")
async def e2e_maestro(
    pg_server: postgres.Postgres,
    kafka_settings: KafkaSettings,
    kafka_as: KafkaAs,
    infra_env: Environment,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> AsyncIterator[MaestroUnderTest]:
    """A Maestro server on a database and Kafka topics of its own, serving TLS with a certificate of
    the session environment's CA (whose certificates the provisioner's local agents get too). A
    test module sets ``MAESTRO_DELETION_GRACE`` (seconds) to have unconfirmed deletes dropped sooner."""
    suffix = uuid.uuid4().hex[:10]
    ca = pki.platform_ca(infra_env)
    folder = tmp_path_factory.mktemp("identities")
    serving = ca.issue(Identity.service("maestro-server"), hosts=("127.0.0.1", "localhost"), server=True)
    dsn = await asyncio.to_thread(pg_server.create_database, f"e2e_{suffix}")
    settings = ServerSettings(
        dsn=dsn,
        kafka=kafka_settings,
        port=ports.free_port(),
        topics=layout.Layout(f"e2e.{suffix}"),
        # Argo CD deletes an Application's resources before the Application goes: give it time
        # rather than orphaning the work.
        deletion_grace=timedelta(seconds=getattr(request.module, "MAESTRO_DELETION_GRACE", 300.0)),
        heartbeat_seconds=1.0,
        server_id="maestro-e2e",
        tls=serving.write(folder / "server", "tls", ca.cert_pem),
    )
    running = await app.start(settings)
    try:
        yield MaestroUnderTest(running, settings, ca, folder, kafka_as)
    finally:
        await running.stop()


@contextlib.asynccontextmanager
async def running_agent(server: MaestroUnderTest, cluster: kube.Cluster) -> AsyncIterator[None]:
    """The real agent of one cluster, as a task in this event loop, with its cluster's identity."""
    async with MaestroClient(server.address, source="e2e", credentials=server.credentials()) as admin:
        slot = (await admin.get_consumer(cluster.name)).slot
    assert slot is not None
    settings = agent_service.AgentSettings(
        cluster=cluster.name,
        kubeconfig=str(cluster.kubeconfig),
        kafka=server.kafka_as(Identity.cluster(cluster.name, slot)),
        server=server.address,
        credentials=server.credentials(Identity.cluster(cluster.name, slot)),
        topics=server.settings.topics,
    )
    ready = asyncio.Event()
    task = asyncio.create_task(agent_service.run(settings, ready=ready), name=f"agent-{cluster.name}")
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait([task, waiter], timeout=60, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if task.done():
        task.result()  # raises what stopped the agent
    if not ready.is_set():
        task.cancel()
        pytest.fail(f"the Maestro agent of {cluster.name} did not start within 60s")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def fleetplane(*args: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run ``fleetplane ...`` to its end, as a user at a terminal would; fails the test on error."""
    cli = Path(sys.executable).parent / "fleetplane"
    out = subprocess.run(
        [str(cli), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "250"},
    )
    if check and out.returncode != 0:
        pytest.fail(f"fleetplane {' '.join(args)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out


class Subcommand:
    """A long-running ``fleetplane ...`` command (an operator) as a subprocess, its output in ``log``;
    stopped with SIGTERM as a user's Ctrl-C or a pod's termination would."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.argv = [str(Path(sys.executable).parent / "fleetplane"), *args]
        self.log = log
        #: set in its environment besides this process's own
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **self.env}
            )

    def stop(self) -> int | None:
        """Stop it; returns its exit code, or None when it was not running."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is not None:
            return proc.returncode
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        return None

    def died(self) -> int | None:
        """The exit code if it exited on its own."""
        return self.proc.poll() if self.proc is not None else None


class Controllers(Subcommand):
    """``fleetplane controllers run`` against the hub, with short periods so repairs show up fast."""

    def __init__(self, hub: kube.Cluster, maestro: MaestroUnderTest, log: Path, *extra: str) -> None:
        tls = maestro.identity(Identity.source(contract.MAESTRO_SOURCE))
        super().__init__(platform.controllers_args(hub.kubeconfig, maestro.address, tls, *extra), log)


@pytest.fixture(scope="module")
async def pull_fleet(
    hub: kube.Cluster,
    worker_clusters: list[kube.Cluster],
    argocd_workers: list[argocd.ArgoCD],
    e2e_maestro: MaestroUnderTest,
    infra_env: Environment,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> AsyncIterator[PullFleet]:
    """A module that sets ``HUB_ARGOCD = True`` also gets argocd-server on the hub, with the
    controllers writing the mirrors' resource trees into its Redis."""
    folder = tmp_path_factory.mktemp("pull-fleet")
    repo = await asyncio.to_thread(gitrepo.demo_apps_repo, folder / "apps")
    await asyncio.to_thread(
        kubectl.apply,
        hub.kubeconfig,
        [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": INVENTORY_NAMESPACE}}],
    )
    async with MaestroClient(
        e2e_maestro.address, source="e2e-observer", credentials=e2e_maestro.credentials()
    ) as client:
        for cluster in worker_clusters:
            await client.create_consumer(cluster.name)
        async with (
            running_agent(e2e_maestro, worker_clusters[0]),
            running_agent(e2e_maestro, worker_clusters[1]),
        ):
            server_env = infra_env.child(f"hub-argocd-{uuid.uuid4().hex[:6]}")
            server = None
            if getattr(request.module, "HUB_ARGOCD", False):
                server = await asyncio.to_thread(
                    hub_argocd.start, server_env, hub.kubeconfig, identities=infra_env
                )
            extra = hub_argocd.controllers_args(server) if server is not None else []
            controllers = Controllers(hub, e2e_maestro, folder / "controllers.log", *extra)
            controllers.start()
            fleet = PullFleet(hub, worker_clusters, e2e_maestro, client, controllers, repo, server)
            try:
                yield fleet
            finally:
                died = controllers.died()
                controllers.stop()
                await asyncio.to_thread(server_env.down)
            if died is not None:
                pytest.fail(f"the controllers exited with {died}:\n{fleet.log_tail()}")


@pytest.fixture
async def clients(pull_fleet: PullFleet) -> AsyncIterator[dict[str, Kube]]:
    """The hub's (``"hub"``) and each worker's API, closed after the test."""
    made = {"hub": Kube(pull_fleet.hub), **{c.name: Kube(c) for c in pull_fleet.workers}}
    yield made
    for client in made.values():
        await client.rest.close()
