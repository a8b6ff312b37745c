"""Argo CD's Redis over TLS as the worker composition renders it, run for real.

No kubelet runs pods here, so the rendered containers of Argo CD's released manifests run as host
processes the way a kubelet would run them (``localinfra.hostpod``): their Secret volumes projected into
folders, the mount paths in their args and env replaced by those folders, their env resolved from
values and Secret keys. The Secrets are issued as the provisioner issues them. What differs from a
cluster, and only that: each process listens on a free loopback port and the clients reach Redis
by ``localhost`` (so Redis's certificate names ``localhost`` besides its Service's names), and what
Argo CD reads from ConfigMaps keeps its defaults (the hop to the repo-server is
``test_argocd_transport``'s).

Cases: Redis started with its rendered args refuses plain TCP, a TLS client without a certificate
and a certificate of another CA, and answers a client certificate of the platform CA that gives
the password; the repo-server and the application controller started with their rendered args
sync an Application from a local git repository, and Redis then holds what each of them caches
(the repo-server's manifests, the controller's managed resources): both wrote over TLS, verifying
Redis against the CA and presenting their own certificates.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import secrets
import shutil
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from localinfra import argocd, build, gitrepo, hostpod, kube, kubectl, paths, ports, process, redis
from localinfra.environment import Environment
from provisioner import catalog, identity, render
from tests import argoapps
from tests.unit.provisioner import builders
from trust import authority, files
from trust.identity import Identity

pytestmark = pytest.mark.integration

CLUSTER = "redis-tls-rendered"
CLIENTS = {"argocd-repo-server": "Deployment", "argocd-application-controller": "StatefulSet"}
APP = "redis-tls"


@dataclass(frozen=True)
class Running:
    port: int
    password: str
    #: a client certificate of the platform CA, of no Argo CD component, and that CA
    client: files.TLSFiles
    cluster: kube.Cluster


def _issued(resources: list[render.ComposedResource], ca: authority.CertificateAuthority) -> hostpod.Secrets:
    """Every service certificate the composition asks for, issued as the provisioner issues it."""
    out = {}
    for resource in resources:
        if resource.target != "identity" or "service" not in resource.object:
            continue
        wanted = identity.request(resource.object)
        if wanted.secret_name == "argocd-redis-tls":  # reached by localhost here, not by its Service
            wanted = dataclasses.replace(wanted, dns_names=(*wanted.dns_names, "localhost"))
        out[wanted.secret_name] = identity.issued_secret(wanted, wanted.identity(""), ca)["data"]
    return out


@pytest.fixture(scope="module")
def running(infra_env: Environment, etcd_url: str) -> Iterator[Running]:
    env = infra_env.child(CLUSTER)
    folder = env.path("pods")
    resources = builders.compose(catalog.load_documents(build.argocd_manifests_dir() / "install.yaml"))
    ca = authority.CertificateAuthority.create()
    password = secrets.token_urlsafe(32)
    # Where the session's log scan looks for generated passwords (tests.conftest).
    files.write_private(env.path(redis.CREDENTIALS_DIR) / "auth", password)
    # The argocd-redis Secret Argo CD's init container would create.
    mounted = {
        **_issued(resources, ca),
        "argocd-redis": {"auth": base64.b64encode(password.encode()).decode()},
    }
    cluster = kube.start(env, CLUSTER, etcd_url, controller_manager=False)
    try:
        argocd.install_crds(cluster)
        kubectl.apply(cluster.kubeconfig, argocd.config_objects())
        port = _start_redis(env, folder, resources, mounted)
        _start_clients(env, folder, cluster, resources, mounted, port)
        probe = ca.issue(Identity.service(f"{CLUSTER}.test")).write(env.path("probe"), "tls", ca.cert_pem)
        yield Running(port, password, probe, cluster)
    finally:
        kube.delete(env, CLUSTER, etcd_url)
        env.down(remove_files=False)


def _start_redis(
    env: Environment, folder: Path, resources: list[render.ComposedResource], mounted: hostpod.Secrets
) -> int:
    binary = shutil.which("redis-server")
    assert binary, "redis-server is installed with the local build"
    pod = hostpod.prepare(
        builders.workload(resources, "Deployment", "argocd-redis"), "redis", folder / "redis", mounted
    )
    port = ports.free_port()
    # The image's entrypoint runs redis-server with the container's args; a later flag wins.
    argv = [binary, *pod.argv, "--tls-port", str(port), "--bind", "127.0.0.1", "--dir", str(folder / "redis")]
    record = env.add_process(process.spawn("argocd-redis", argv, folder / "redis.log", env=pod.env))
    process.wait_until(record, lambda: ports.is_listening(port), timeout=30, what="listening")
    return port


def _start_clients(
    env: Environment,
    folder: Path,
    cluster: kube.Cluster,
    resources: list[render.ComposedResource],
    mounted: hostpod.Secrets,
    redis_port: int,
) -> None:
    kubeconfig = kube.with_namespace(cluster.kubeconfig, argocd.NAMESPACE, folder / "kubeconfig")
    host = argocd.host_environment(folder / "host", kubeconfig)
    redis_address = ["--redis", f"localhost:{redis_port}"]
    repo_port, repo_metrics, controller_metrics = ports.free_port(), ports.free_port(), ports.free_port()
    local = {
        "argocd-repo-server": [
            *redis_address,
            *("--address", "127.0.0.1", "--port", str(repo_port)),
            *("--metrics-address", "127.0.0.1", "--metrics-port", str(repo_metrics)),
        ],
        "argocd-application-controller": [
            *redis_address,
            *("--kubeconfig", str(kubeconfig), "--namespace", argocd.NAMESPACE),
            *("--repo-server", f"127.0.0.1:{repo_port}", "--metrics-port", str(controller_metrics)),
        ],
    }
    for name, kind in CLIENTS.items():
        pod = hostpod.prepare(builders.workload(resources, kind, name), name, folder / name, mounted)
        # The image's multi-call binary takes its role from the name it is run by.
        role = Path(pod.argv[0]).name
        argv = [str(paths.bin_dir() / "argocd"), *pod.argv[1:], *local[name]]
        run_env = {**host, **pod.env, "ARGOCD_BINARY_NAME": role}
        record = env.add_process(process.spawn(name, argv, folder / f"{name}.log", env=run_env))
        listening = repo_port if name == "argocd-repo-server" else controller_metrics
        process.wait_until(
            record, functools.partial(ports.is_listening, listening), timeout=60, what="listening"
        )


def _ask(running: Running, tls: files.TLSFiles | None, *commands: bytes) -> bytes:
    context = redis.client_context(running.client.ca, tls)
    return redis.ask("localhost", running.port, context, *commands)


def _refused(attempt: Any) -> bool:
    try:
        return bool(attempt() == b"")
    except (ssl.SSLError, OSError):
        return True


def test_redis_answers_a_client_certificate_of_the_platform_ca_with_the_password(running: Running) -> None:
    reply = _ask(running, running.client, redis.command("AUTH", running.password), redis.command("PING"))
    assert reply == b"+OK\r\n+PONG\r\n"


def test_redis_refuses_plain_tcp(running: Running) -> None:
    def plain() -> bytes:
        with socket.create_connection(("127.0.0.1", running.port), timeout=2) as sock:
            sock.sendall(redis.command("AUTH", running.password) + redis.command("PING"))
            return sock.recv(4096)

    assert _refused(plain)


def test_redis_refuses_tls_without_a_client_certificate(running: Running) -> None:
    assert _refused(
        lambda: _ask(running, None, redis.command("AUTH", running.password), redis.command("PING"))
    )


def test_redis_refuses_a_certificate_of_another_ca(running: Running, tmp_path: Path) -> None:
    other = authority.CertificateAuthority.create()
    issued = other.issue(Identity.service(f"{CLUSTER}.argocd-repo-server")).write(
        tmp_path, "tls", other.cert_pem
    )
    stranger = files.TLSFiles(ca=running.client.ca, cert=issued.cert, key=issued.key)
    assert _refused(
        lambda: _ask(running, stranger, redis.command("AUTH", running.password), redis.command("PING"))
    )


def test_the_clients_cache_in_redis_over_tls(running: Running, tmp_path: Path) -> None:
    repo = gitrepo.demo_apps_repo(tmp_path / "apps")
    api = config.new_client_from_config(str(running.cluster.kubeconfig))
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(
        "argoproj.io",
        "v1alpha1",
        argocd.NAMESPACE,
        "applications",
        argoapps.application(APP, repo, "apps/configmap1", APP),
    )
    argoapps.wait_status(custom, APP, argoapps.synced_and_healthy)

    def count(pattern: str) -> int:
        script = "return #redis.call('KEYS', ARGV[1])"
        auth = redis.command("AUTH", running.password)
        reply = _ask(running, running.client, auth, redis.command("EVAL", script, "0", pattern))
        assert reply.startswith(b"+OK\r\n:"), reply
        return int(reply.removeprefix(b"+OK\r\n:").split(b"\r\n")[0])

    # Argo CD ends each key with its cache version and compression.
    assert count("mfst|*") >= 1  # the repo-server's generated manifests
    assert count(f"app|managed-resources|{APP}|*") == 1  # the controller's view of the app
