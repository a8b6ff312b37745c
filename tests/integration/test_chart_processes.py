"""fleetplane's processes run as the charts' Deployments say: with their containers' arguments
and environment, and the operators and the agent with their ServiceAccounts' tokens, against the
real hub, PostgreSQL and Kafka. This proves what rendering cannot: the arguments are the CLI's, the
accounts' RBAC suffices, the probes' endpoints answer."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from localinfra import kafka, kube, kubectl, pki, platform, ports
from localinfra.environment import Environment
from maestro.client import Credentials, MaestroClient
from tests.charts import (
    AGENT_CHART,
    AGENT_VALUES,
    HUB_CHART,
    HUB_VALUES,
    helm_run,
    make_namespace,
    prepare_hub,
    release_objects,
    render,
    values_file,
)
from trust.identity import Identity


@pytest.fixture(scope="module")
def hub_ready(hub: kube.Cluster) -> kube.Cluster:
    return prepare_hub(hub)


def _token_kubeconfig(cluster: kube.Cluster, account: str, folder: Path) -> Path:
    """A kubeconfig of ``cluster`` that speaks with a token of ``account`` (namespace/name), as the
    pod's mounted ServiceAccount token would."""
    namespace, name = account.split("/")
    token = kubectl.run(cluster.kubeconfig, "create", "token", name, "-n", namespace, "--duration", "10m")
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"] = [{"name": name, "user": {"token": token.strip()}}]
    config["contexts"] = [{"name": name, "context": {"cluster": config["clusters"][0]["name"], "user": name}}]
    config["current-context"] = name
    path = folder / f"{name}.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def _run_as(
    cluster: kube.Cluster, account: str, args: list[str], folder: Path, ready: Callable[[], bool]
) -> str:
    """Run ``fleetplane ARGS`` with a token of ``account`` until ``ready()``; return its log."""
    kubeconfig = _token_kubeconfig(cluster, account, folder)
    log = folder / f"{kubeconfig.stem}.log"
    return _run_until([*args, "--kubeconfig", str(kubeconfig)], log, ready)


@contextlib.contextmanager
def _running(
    args: list[str], log: Path, ready: Callable[[], bool], env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``fleetplane ARGS`` running, once ``ready()``; stopped on leaving."""
    command = platform.fleetplane_argv(*args)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
    try:
        deadline = time.monotonic() + 60
        while not (answered := ready()) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
        assert answered, f"fleetplane {' '.join(args)[:300]} never got ready:\n{log.read_text()[-3000:]}"
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _run_until(
    args: list[str], log: Path, ready: Callable[[], bool], env: dict[str, str] | None = None
) -> str:
    """Run ``fleetplane ARGS`` until ``ready()``, and a few seconds more (an operator's watches
    start, an agent's first passes run); stop it and return its log."""
    with _running(args, log, ready, env):
        time.sleep(3)
    return log.read_text()


def _logged(log: Path, text: str) -> Callable[[], bool]:
    return lambda: text in log.read_text()


def _answers(url: str) -> bool:
    """What the kubelet's httpGet probe asks."""
    return _probe(url)[0] == 200


def _probe(url: str) -> tuple[int, str]:
    """Status and body of a probe's GET (0 and the error while nothing answers)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return int(reply.status), reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


def _accepts(port: int) -> bool:
    """What the kubelet's tcpSocket probe asks."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def _as_local(args: list[str], **values: str) -> list[str]:
    """A container's args with the values of some flags replaced (``ca_dir`` is ``--ca-dir``)."""
    out = list(args)
    for flag, value in values.items():
        out[out.index("--" + flag.replace("_", "-")) + 1] = value
    return out


def test_the_operators_run_with_their_charts_accounts_and_arguments(
    hub_ready: kube.Cluster, infra_env: Environment, tmp_path: Path
) -> None:
    """The controllers and the provisioner, as real processes with their Deployments' arguments
    and their accounts' tokens, start, take their Lease, install the platform CRDs and watch what
    they serve without one refusal, and their probes' paths answer: the provisioner is ready; the
    controllers say they are not, naming the Maestro server alone (it is not there: they only
    start). A second controllers replica stands by, watching the Lease without a refusal, live and
    ready as a standby, and leads once the first stops. The server's account, which has no role, is
    refused: the check bites."""
    namespace, release = "fleetplane-accounts", "acc"
    make_namespace(hub_ready, namespace)
    values = {**HUB_VALUES, "tls": {"enabled": False}, "workerCluster": {"install": False}}
    helm_run(
        hub_ready, "install", release, str(HUB_CHART), "-n", namespace, "-f", values_file(tmp_path, values)
    )
    maestro = "127.0.0.1:9"
    try:
        deployments = {
            d["metadata"]["name"]: d for d in release_objects(hub_ready, release, namespace)["Deployment"]
        }

        def local_args(component: str) -> tuple[list[str], int]:
            pod = deployments[f"{release}-fleetplane-hub-{component}"]["spec"]["template"]["spec"]
            (container,) = pod["containers"]
            probes = {p["httpGet"]["path"] for p in (container["readinessProbe"], container["livenessProbe"])}
            assert probes == {"/readyz", "/healthz"}
            health = ports.free_port()
            args = _as_local(
                container["args"], maestro=maestro, health_host="127.0.0.1", health_port=str(health)
            )
            if component == "provisioner":
                args = _as_local(args, ca_dir=str(infra_env.path("pki")))
            return args, health

        def readiness(health: int, expected: Callable[[tuple[int, str]], bool]) -> Callable[[], bool]:
            return lambda: (
                _answers(f"http://127.0.0.1:{health}/healthz")
                and expected(_probe(f"http://127.0.0.1:{health}/readyz"))
            )

        def only_maestro_missing(answer: tuple[int, str]) -> bool:
            status, body = answer
            lines = body.splitlines()
            unreachable = f"the Maestro server at {maestro} does not answer: UNAVAILABLE: "
            return status == 503 and len(lines) == 1 and lines[0].startswith(unreachable)

        # (whose account, whose arguments, what its /readyz says once it watches)
        for account, component, expected in (
            ("controllers", "controllers", only_maestro_missing),
            ("provisioner", "provisioner", lambda answer: answer == (200, "ready\n")),
            ("maestro", "controllers", lambda answer: answer[0] != 0),
        ):
            args, health = local_args(component)
            account_name = f"{namespace}/{release}-fleetplane-hub-{account}"
            log = _run_as(hub_ready, account_name, args, tmp_path, readiness(health, expected))
            if account == "maestro":
                assert "leases.coordination.k8s.io" in log and "is forbidden" in log, log[-3000:]
            else:
                assert "leading as" in log, log[-3000:]
                assert "forbidden" not in log.lower(), log[-3000:]
        _standby_takes_over(
            hub_ready, f"{namespace}/{release}-fleetplane-hub-controllers", local_args, tmp_path
        )
    finally:
        helm_run(hub_ready, "uninstall", release, "-n", namespace, "--wait")


def _standby_takes_over(
    hub: kube.Cluster, account: str, local_args: Callable[[str], tuple[list[str], int]], folder: Path
) -> None:
    """Two controllers replicas with the same account: the second stands by (its watch of the Lease
    is not refused, its probes answer 200, its readiness saying it stands by) and leads once the
    first stops cleanly."""
    kubeconfig = ["--kubeconfig", str(_token_kubeconfig(hub, account, folder))]
    (first_args, _), (second_args, second_probe) = local_args("controllers"), local_args("controllers")
    first_log, second_log = folder / "first.log", folder / "second.log"
    with (
        _running([*first_args, *kubeconfig], first_log, _logged(first_log, "leading as")) as first,
        _running([*second_args, *kubeconfig], second_log, _logged(second_log, "standing by")),
    ):
        time.sleep(3)  # the standby's watch runs
        standing = second_log.read_text()
        assert _answers(f"http://127.0.0.1:{second_probe}/healthz"), "a standby's liveness probe must answer"
        status, said = _probe(f"http://127.0.0.1:{second_probe}/readyz")
        assert status == 200 and said.startswith("standby:"), (status, said)
        assert "forbidden" not in standing.lower() and "leading as" not in standing, standing[-3000:]
        first.terminate()
        assert first.wait(timeout=30) == 0, first_log.read_text()[-3000:]
        stopped = time.monotonic()
        # Without the release the standby would lead only when the lease runs out (15 s): leading
        # within 10 s shows it, whatever the machine's load adds to the 2 s retry period.
        while "leading as" not in second_log.read_text() and time.monotonic() < stopped + 10:
            time.sleep(0.1)
        took = time.monotonic() - stopped
    assert "released" in first_log.read_text(), first_log.read_text()[-3000:]
    assert "leading as" in second_log.read_text(), second_log.read_text()[-3000:]
    print(f"\nthe standby led {took:.2f}s after the leader stopped cleanly")


async def _register(address: str, admin: Path, cluster: str) -> int:
    """Register ``cluster`` with the Maestro server as an admin; its incarnation."""
    async with MaestroClient(
        address, source="chart-test", credentials=Credentials.from_folder(admin)
    ) as client:
        consumer = await client.create_consumer(cluster)
    assert consumer.slot is not None
    return consumer.slot


def test_the_server_and_an_agent_run_with_their_deployments_arguments(
    hub_ready: kube.Cluster, infra_env: Environment, kafka_broker: kafka.Kafka, pg_dsn: str, tmp_path: Path
) -> None:
    """The migration and the Maestro server run with their containers' arguments and environment
    (the DSN from MAESTRO_DSN, the identity from --tls-dir) against the real PostgreSQL and Kafka:
    gRPC health says SERVING to a client of the platform CA, the port accepts bare connections and
    the health port answers its probes' paths. An agent installed by its chart
    (on the hub, standing in for a worker) then runs with its container's arguments and its
    account's token: it applies its CRD, reads its cluster's topic and reports, without a refusal,
    and its probes' paths answer 200 once it does."""
    prefix, cluster = f"chart-test-{uuid.uuid4().hex[:8]}", "chart-agent"
    values = {**HUB_VALUES, "kafka": {"bootstrap": kafka_broker.bootstrap}, "server": {"topicPrefix": prefix}}
    docs = render(hub_ready, HUB_CHART, "fleetplane", values_file(tmp_path, values))
    (pod,) = [
        d["spec"]["template"]["spec"]
        for d in docs
        if d["metadata"]["name"].endswith("-maestro") and d["kind"] == "Deployment"
    ]
    ((migrate,), (server,)) = pod["initContainers"], pod["containers"]
    assert {e["name"] for e in server["env"]} >= {"MAESTRO_DSN", "PGPASSWORD", "POD_NAME"}
    env = {**os.environ, "MAESTRO_DSN": pg_dsn, "POD_NAME": "maestro-chart-test"}
    subprocess.run(platform.fleetplane_argv(*migrate["args"]), env=env, check=True, timeout=120)
    identity = pki.ensure_identity_files(
        infra_env, kafka.MAESTRO_SERVER, hosts=("127.0.0.1", "localhost"), server=True
    )
    port, health_port = ports.free_port(), ports.free_port()
    # loopback here; 0.0.0.0 in the pod, for its Service and the kubelet
    args = _as_local(
        server["args"],
        host="127.0.0.1",
        port=str(port),
        health_host="127.0.0.1",
        health_port=str(health_port),
        tls_dir=str(identity.ca.parent),
    )
    args = [a.replace("$(POD_NAME)", env["POD_NAME"]) for a in args]
    probes = {p["httpGet"]["path"] for p in (server["readinessProbe"], server["livenessProbe"])}
    assert probes == {"/readyz", "/healthz"}

    def ready() -> bool:
        answered = (_answers(f"http://127.0.0.1:{health_port}{path}") for path in sorted(probes))
        return _accepts(port) and all(answered)

    server_log = tmp_path / "server.log"
    with _running(args, server_log, ready, env=env):
        admin = pki.ensure_identity_files(infra_env, Identity.admin("chart-test")).ca.parent
        slot = asyncio.run(_register(f"127.0.0.1:{port}", admin, cluster))
        agent_tls = pki.identity_files(infra_env, Identity.cluster(cluster, slot)).ca.parent
        assert platform.serving(f"127.0.0.1:{port}", identity), "gRPC health is not SERVING"
        log = _run_agent(
            hub_ready,
            cluster,
            prefix,
            [f"127.0.0.1:{port}", kafka_broker.bootstrap, str(agent_tls)],
            tmp_path,
        )
        assert "forbidden" not in log.lower() and "level='error'" not in log, log[-3000:]
    text = server_log.read_text()
    assert f"serving on 127.0.0.1:{port}" in text and "level='error'" not in text, text[-3000:]


def _run_agent(hub: kube.Cluster, cluster: str, prefix: str, endpoints: list[str], folder: Path) -> str:
    """Install the agent chart, run its Deployment's command with ``endpoints`` (the server, Kafka,
    the TLS folder) in place of the pod's, until it reads its topic and its probes' paths answer;
    uninstall; its log."""
    namespace, release = "agent-run", "run"
    make_namespace(hub, namespace)
    values = {**AGENT_VALUES, "cluster": cluster, "topicPrefix": prefix}
    helm_run(hub, "install", release, str(AGENT_CHART), "-n", namespace, "-f", values_file(folder, values))
    try:
        (deployment,) = release_objects(hub, release, namespace)["Deployment"]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        server, bootstrap, tls_dir = endpoints
        health = ports.free_port()
        args = _as_local(
            container["args"],
            server=server,
            kafka=bootstrap,
            tls_dir=tls_dir,
            health_host="127.0.0.1",
            health_port=str(health),
        )
        paths = {p["httpGet"]["path"] for p in (container["readinessProbe"], container["livenessProbe"])}
        assert paths == {"/readyz", "/healthz"}
        account = f"{namespace}/{deployment['spec']['template']['spec']['serviceAccountName']}"
        kubeconfig = _token_kubeconfig(hub, account, folder)
        log = folder / "agent.log"

        def ready() -> bool:
            reading = _logged(log, f"agent for {cluster} reading")()
            return reading and all(_answers(f"http://127.0.0.1:{health}{path}") for path in sorted(paths))

        return _run_until([*args, "--kubeconfig", str(kubeconfig)], log, ready)
    finally:
        helm_run(hub, "uninstall", release, "-n", namespace, "--wait")
