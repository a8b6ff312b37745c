"""``fleetplane local install``: the hub chart installed on a local hub, its workloads running.

The images are built (cached) and pushed to a local registry; PostgreSQL, Kafka and a hub cluster
start as ``fleetplane local up`` starts them; the Secrets and the ConfigMap the chart expects are
made from the environment's CA and database; ``helm install`` installs ``charts/fleetplane-hub``.

Then the chart's pods must run. When a node of the hub is Ready (a kubelet), the kubelet runs them
and this waits for the Deployments to be available. A local hub has no kubelet (one needs
containerd and runc, and Kubernetes 1.35+ kubelets a cgroup v2 host: docs/install.md), so its
Deployments run through the local workload runner instead: each container as a process of the
environment with its Deployment's command, args and env, its mounted Secrets and ConfigMaps
projected into folders (``localinfra.hostpod``), and its ServiceAccount's token as its
credentials. What differs from a pod, and only that: the ports (each process gets free loopback
ports, and the server's Service address names the server's), the kubeconfig the token comes in,
this virtualenv's ``fleetplane`` for the image's, ``--local-env`` added to the provisioner so
that it can also compose local clusters (the chart's serves ``aws``), and ``FLEETPLANE_CACHE``
naming this machine's component cache (the pod's ``HOME`` is its ``/tmp`` folder), from which the
local provider runs its clusters.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bootstrap import local_components
from localinfra import (
    fleet,
    helm,
    hostpod,
    image,
    image_rootfs,
    kube,
    kubectl,
    paths,
    pki,
    platform,
    ports,
    postgres,
    process,
    registry,
)
from localinfra.environment import Environment
from localinfra.errors import InfraError
from localinfra.progress import Reporter, stderr_reporter, step

RELEASE = "fleetplane-hub"
NAMESPACE = "fleetplane"
CHART = "fleetplane-hub"
#: where the runner's processes are named in the environment
PREFIX = "chart/"
#: the chart's identities (docs/install.md, "TLS Secrets")
IDENTITIES = {
    "maestro-server-tls": (platform.SERVER_IDENTITY, True),
    "fleetplane-controllers-tls": (local_components.CONTROLLERS_IDENTITY, False),
    "fleetplane-provisioner-tls": (local_components.PROVISIONER_IDENTITY, False),
}
_PORT_FLAGS = ("--port", "--health-port", "--metrics-port")
_HOST_FLAGS = ("--host", "--health-host", "--metrics-host")
KUBELET = "kubelet"
RUNNER = "runner"


@dataclass
class Installation:
    env: Environment
    hub: kube.Cluster
    #: "kubelet" (a node of the hub is Ready and runs the pods) or "runner" (the local workload runner)
    path: str
    maestro: str = ""
    registry: str = ""
    processes: list[process.ProcessRecord] = field(default_factory=list)


def ready_nodes(hub: kube.Cluster) -> list[str]:
    """The hub's nodes whose kubelet reports Ready: where pods would run."""
    listed = json.loads(kubectl.run(hub.kubeconfig, "get", "nodes", "-o", "json"))
    return [
        node["metadata"]["name"]
        for node in listed.get("items") or []
        for condition in (node.get("status") or {}).get("conditions") or []
        if condition.get("type") == "Ready" and condition.get("status") == "True"
    ]


def chart_dir() -> Path:
    return image.source_root() / "charts" / CHART


def install(env: Environment, report: Reporter = stderr_reporter) -> Installation:
    """Everything in the module's doc; on failure the caller runs ``env.down()``."""
    with step(report, "the images (cached; docs/images.md)"):
        built = image.build_images(report=report)
    local = fleet.up(env, workers=0, report=report, argo=False)
    hub = local.hub
    with step(report, "pushing the images to a local registry"):
        address = _push(env, built)
    with step(report, "the chart's Secrets and ConfigMap"):
        database = local.postgres.create_database("maestro")
        _prepare(env, hub, database)
    with step(report, f"helm install {RELEASE} charts/{CHART}"):
        values = _values(env, address, local.kafka.bootstrap)
        _helm(hub, "install", RELEASE, str(chart_dir()), "-n", NAMESPACE, "-f", str(values))
    nodes = ready_nodes(hub)
    path = KUBELET if nodes else RUNNER
    installed = Installation(env, hub, path, registry=address)
    if nodes:
        report(f"a kubelet runs the chart's pods: Ready nodes {', '.join(nodes)}")
        with step(report, "waiting for the Deployments to be available"):
            kubectl.run(
                hub.kubeconfig, "wait", "deployments", "--all", "-n", NAMESPACE,
                "--for=condition=Available", "--timeout=600s", timeout=620,
            )  # fmt: skip
        return installed
    report(
        "no kubelet (no node of the hub is Ready): the chart's Deployments run through the local "
        "workload runner"
    )
    Runner(env, hub).run_all(installed, report)
    return installed


def _push(env: Environment, built: Sequence[image.Image]) -> str:
    """The images copied to a local registry (skopeo, TLS from the environment's CA); its address.
    The registry stops once they are stored (in the environment's folder): no kubelet pulls here."""
    image_rootfs.ensure_tools(("skopeo",), log=env.path("logs") / "apt.log")
    running = registry.start(env.path("registry"), pki.platform_ca(env))
    try:
        for item in built:
            subprocess.run(
                ["skopeo", "copy", "--quiet", "--dest-cert-dir", str(running.certs_dir()),
                 f"oci:{item.reference}", f"docker://{running.address}/fleetplane/{item.name}:{item.tag}"],
                check=True, capture_output=True, timeout=300,
            )  # fmt: skip
    except subprocess.CalledProcessError as exc:
        raise InfraError("skopeo could not push an image", log_tail=exc.stderr.decode()[-2000:]) from None
    finally:
        running.stop()
    return running.address


def _secret(name: str, data: Mapping[str, bytes], kind: str = "Opaque") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": kind,
        "metadata": {"name": name, "namespace": NAMESPACE},
        "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
    }


def _prepare(env: Environment, hub: kube.Cluster, dsn: str) -> None:
    """The namespaces, the identities' TLS Secrets, the CA Secret, the database's Secret (the DSN
    without the password, which goes in its own key) and its CA's ConfigMap."""
    ca = pki.platform_ca(env)
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        # the claims' namespace too: the chart gives the provisioner a Role there
        for name in (NAMESPACE, platform.INVENTORY_NAMESPACE, local_components.CLAIMS_NAMESPACE)
    ]
    service = f"{RELEASE}-maestro"
    hosts = (*platform.SERVER_HOSTS, service, f"{service}.{NAMESPACE}", f"{service}.{NAMESPACE}.svc")
    for secret, (who, server) in IDENTITIES.items():
        issued = ca.issue(who, hosts=hosts if server else (), server=server)
        tls = {"ca.crt": ca.cert_pem, "tls.crt": issued.cert_pem, "tls.key": issued.key_pem}
        objects.append(_secret(secret, tls, "kubernetes.io/tls"))
    ca_key = (env.path("pki") / "ca.key").read_bytes()
    objects.append(_secret("fleetplane-ca", {"ca.crt": ca.cert_pem, "ca.key": ca_key}))
    url, _, query = dsn.partition("?")
    params = dict(p.split("=", 1) for p in query.split("&") if p)
    user = urllib.parse.unquote(urllib.parse.urlsplit(url).username or "")
    entries = Path(params.pop("passfile")).read_text().splitlines()
    (password,) = {e[4] for e in map(postgres.parse_passfile_line, entries) if e[3] == user}
    ca_pem = Path(params.pop("sslrootcert")).read_bytes()
    params["sslrootcert"] = "/etc/fleetplane/postgres-ca/ca.pem"
    chart_dsn = url + "?" + "&".join(f"{k}={v}" for k, v in params.items())
    objects.append(_secret("maestro-db", {"dsn": chart_dsn.encode(), "password": password.encode()}))
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "postgres-ca", "namespace": NAMESPACE},
            "data": {"ca.pem": ca_pem.decode()},
        }
    )
    kubectl.apply(hub.kubeconfig, objects, field_manager="fleetplane-install")


def _values(env: Environment, registry_address: str, kafka: str) -> Path:
    """One replica of each, the images in the local registry, metrics on."""
    values: dict[str, Any] = {
        "kafka": {"bootstrap": kafka},
        "metrics": {"enabled": True},
        "server": {"replicas": 1, "database": {"caConfigMap": "postgres-ca"}},
        "controllers": {"replicas": 1},
        # the demo's claims write their kubeconfigs in their own namespace
        "provisioner": {
            "replicas": 1,
            "awsRegion": "eu-west-1",
            "connectionSecretNamespaces": [local_components.CLAIMS_NAMESPACE],
        },
    }
    for component, role in (("server", "server"), ("controllers", "hub"), ("provisioner", "hub")):
        values[component]["image"] = {"repository": f"{registry_address}/fleetplane/fleetplane-{role}"}
    path = env.path("install") / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def _helm(hub: kube.Cluster, *args: str) -> str:
    helm.ensure_helm()
    argv = [str(helm.helm_path()), "--kubeconfig", str(hub.kubeconfig), *args]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    if out.returncode != 0:
        raise InfraError(f"helm {' '.join(args)[:200]} failed", log_tail=out.stdout + out.stderr)
    return out.stdout


class Runner:
    """The local workload runner: the release's Deployments as processes of ``env``."""

    def __init__(self, env: Environment, hub: kube.Cluster) -> None:
        self.env = env
        self.hub = hub
        self.addresses: dict[str, str] = {}

    def _read(self, kind: str) -> dict[str, dict[str, str]]:
        listed = json.loads(kubectl.run(self.hub.kubeconfig, "get", kind, "-n", NAMESPACE, "-o", "json"))
        return {i["metadata"]["name"]: i.get("data") or {} for i in listed["items"]}

    def run_all(self, installed: Installation, report: Reporter) -> None:
        listed = json.loads(
            kubectl.run(self.hub.kubeconfig, "get", "deployments", "-n", NAMESPACE, "-o", "json")
        )
        deployments = {d["metadata"]["labels"]["app.kubernetes.io/component"]: d for d in listed["items"]}
        secrets, config_maps = self._read("secrets"), self._read("configmaps")
        # the server first: the operators are ready only once it answers
        for component in ("maestro", "controllers", "provisioner"):
            obj = deployments[component]
            with step(report, f"running Deployment {obj['metadata']['name']} through the workload runner"):
                installed.processes.append(self._run(component, obj, secrets, config_maps))
        installed.maestro = self.addresses["maestro"]

    def _run(
        self,
        component: str,
        obj: dict[str, Any],
        secrets: hostpod.Secrets,
        config_maps: hostpod.ConfigMaps,
    ) -> process.ProcessRecord:
        name = obj["metadata"]["name"]
        pod_name = f"{name}-local-0"
        fields = {"metadata.name": pod_name, "metadata.namespace": NAMESPACE}
        root = self.env.path("pods", pod_name)
        pod = obj["spec"]["template"]["spec"]
        kubeconfig = kube.token_kubeconfig(
            self.hub, NAMESPACE, pod["serviceAccountName"], root / "kubeconfig", hours=24
        )
        for init in pod.get("initContainers") or []:
            prepared = hostpod.prepare(obj, init["name"], root, secrets, config_maps, fields)
            done = subprocess.run(
                _fleetplane(prepared.argv), env={**os.environ, **prepared.env},
                capture_output=True, text=True, timeout=300, check=False,
            )  # fmt: skip
            if done.returncode != 0:
                raise InfraError(
                    f"{name}'s init container {init['name']} failed", log_tail=done.stderr[-3000:]
                )
        (container,) = pod["containers"]
        prepared = hostpod.prepare(obj, container["name"], root, secrets, config_maps, fields)
        argv, local = self._local(prepared.argv)
        if component == "maestro":
            if pod.get("automountServiceAccountToken"):
                argv += ["--hub-kubeconfig", str(kubeconfig)]
            self.addresses[_service_address(obj, container)] = f"127.0.0.1:{local['--port']}"
            self.addresses["maestro"] = f"127.0.0.1:{local['--port']}"
        else:
            argv = [*argv, "--kubeconfig", str(kubeconfig)]
        if component == "provisioner":
            argv += ["--local-env", str(self.env.root)]
        log = self.env.path("logs") / f"{name}.log"
        env = {**prepared.env, **_host_env()}
        record = self.env.add_process(process.spawn(PREFIX + name, _fleetplane(argv), log, env=env))
        health = local["--health-port"]
        if component == "maestro":
            tls = platform.identity(self.env, platform.USER_IDENTITY)
            address = self.addresses["maestro"]
            process.wait_until(
                record, lambda: platform.serving(address, tls), timeout=180, what="serving gRPC"
            )
        else:
            process.wait_until(record, _leading(health), timeout=180, what="ready (its /readyz)")
        return record

    def _local(self, argv: Sequence[str]) -> tuple[list[str], dict[str, int]]:
        """Free loopback ports for the pod's, and the Service addresses it names made local."""
        out = [self.addresses.get(a, a) for a in argv]
        local: dict[str, int] = {}
        for i, flag in enumerate(out[:-1]):
            if flag in _PORT_FLAGS:
                local[flag] = ports.free_port()
                out[i + 1] = str(local[flag])
            elif flag in _HOST_FLAGS:
                out[i + 1] = "127.0.0.1"
        return out, local


def _fleetplane(argv: Sequence[str]) -> list[str]:
    """The container's ``fleetplane`` command, run with this virtualenv's ``fleetplane``."""
    if not argv or Path(argv[0]).name != "fleetplane":
        raise InfraError(f"the chart's container runs {list(argv)[:1]}, not fleetplane")
    return platform.fleetplane_argv(*argv[1:])


def _service_address(obj: Mapping[str, Any], container: Mapping[str, Any]) -> str:
    """The address the operators dial for this server: its Service's name in the namespace."""
    port = next(p["containerPort"] for p in container["ports"] if p["name"] == "grpc")
    return f"{obj['metadata']['name']}.{NAMESPACE}.svc:{port}"


def _host_env() -> dict[str, str]:
    """The pod's HOME is its /tmp folder: the local provider's clusters, Argo CD and agents run from
    this machine's component cache, which that HOME would hide."""
    return {"FLEETPLANE_CACHE": str(paths.cache_root())}


def _leading(health: int) -> Callable[[], bool]:
    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{health}/readyz", timeout=3) as reply:
                body = reply.read().decode()
        except (urllib.error.URLError, OSError):
            return False
        return not body.startswith(platform.STANDBY)

    return ready
