"""The parts of the local management cluster, each with a start, a liveness check and a stop.

``local_resources`` turns each into a Pulumi dynamic resource; this module knows nothing of Pulumi,
so it is the same code ``fleetplane local up`` and the tests run (``localinfra``, whose ``platform``
starts the platform's processes). Every part keeps its processes in an environment of its
own under the stack's environment folder (one state file each: Pulumi creates independent parts in
parallel), except the management cluster, which owns the folder itself: the provisioner's clusters
share its etcd and live in its ``provisioned`` child, so taking the cluster down takes them too.

Inputs and outputs are JSON-able dicts, as Pulumi stores them.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from controllers import contract
from kubeio import objects
from kubeio.rest import KubeRest
from localinfra import argocd, build, etcd, gitrepo, hub_argocd, kafka, kube, platform, postgres
from localinfra.environment import Environment
from localinfra.progress import Reporter
from provisioner import api, catalog, operator
from trust.identity import Identity

Values = dict[str, Any]
HUB = "hub"
CLAIMS_NAMESPACE = "team-a"
CLAIM_GROUP = "platform.fleetplane.io/v1alpha1"
#: Labels the demo's claims give their clusters (a team's own key: ``fleetplane.io/`` is the
#: platform's); the demo's ApplicationSet selects clusters by them.
CLUSTER_LABELS = {"demo": "true"}
CONTROLLERS_IDENTITY = Identity.source(contract.MAESTRO_SOURCE)
#: the provisioner registers clusters: an admin
PROVISIONER_IDENTITY = Identity.admin(operator.MAESTRO_SOURCE)


def _quiet(message: str) -> None:
    """Progress lines would go to the engine's diagnostics; Pulumi shows its own progress."""


REPORT: Reporter = _quiet


@dataclass(frozen=True)
class Component:
    """``start(root, inputs, previous) -> outputs`` (``previous``: the outputs of the run it replaces,
    empty on creation); ``running(root, outputs)``; ``stop(root)``."""

    start: Callable[[Path, Values, Values], Values]
    running: Callable[[Path, Values], bool]
    stop: Callable[[Path], None]


def _child(root: Path, name: str) -> Environment:
    return Environment(root).child(name)


def _all_alive(env: Environment) -> bool:
    return bool(env.processes) and not env.dead_processes()


def _stop_child(name: str) -> Callable[[Path], None]:
    def stop(root: Path) -> None:
        _child(root, name).down()

    return stop


def _alive_child(name: str) -> Callable[[Path, Values], bool]:
    return lambda root, _: _all_alive(_child(root, name))


# --- the management cluster: etcd, kube-apiserver, kube-controller-manager -----------------------


def _start_cluster(root: Path, inputs: Values, previous: Values) -> Values:
    env = Environment(root)
    _stop_own(env)
    build.ensure_all(REPORT)
    etcd_url = etcd.start(env)
    hub = kube.start(env, HUB, etcd_url)
    # ApplicationSets are applied to the hub, so it serves Argo CD's CRDs (no Argo CD runs there).
    argocd.install_crds(hub)
    return {"kubeconfig": str(hub.kubeconfig), "server": hub.server, "etcd": etcd_url}


def _stop_own(env: Environment) -> None:
    """Stop what a crashed earlier start left in the folder's own state (not its children)."""
    for name in list(env.processes):
        env.stop_process(name)
    for name in list(env.endpoints):
        env.remove_endpoint(name)


def _cluster_running(root: Path, _: Values) -> bool:
    env = Environment(root)
    return "etcd" in env.processes and _all_alive(env) and kube.is_running(env, HUB)


def _stop_cluster(root: Path) -> None:
    Environment(root).down()


# --- PostgreSQL and Kafka --------------------------------------------------------------------------


def _start_postgres(root: Path, inputs: Values, previous: Values) -> Values:
    env = _child(root, "postgres")
    env.down()
    pg = postgres.start(env, durable=True)
    return {"dsn": pg.create_database("maestro")}


def _start_kafka(root: Path, inputs: Values, previous: Values) -> Values:
    env = _child(root, "kafka")
    env.down()
    # The stack's CA (the management cluster's folder) issues the broker's certificate and every
    # client's: the server's, and the agents' the provisioner starts.
    return {"bootstrap": kafka.start(env, pki_env=Environment(root)).bootstrap}


# --- the platform: CRDs and the default composition ------------------------------------------------


def _install(root: Path, inputs: Values, previous: Values) -> Values:
    asyncio.run(_with_hub(inputs["kubeconfig"], _install_on))
    return {"compositions": str(operator.COMPOSITIONS_DIR / "worker-cluster")}


async def _install_on(hub: objects.Objects) -> bool:
    await operator.install(hub, operator.COMPOSITIONS_DIR / "worker-cluster", platform.INVENTORY_NAMESPACE)
    return True


def _installed(root: Path, inputs: Values) -> bool:
    try:
        return bool(asyncio.run(_with_hub(inputs["kubeconfig"], _all_present)))
    except Exception:  # an unreachable hub is "not installed", which `up` repairs
        return False


async def _all_present(hub: objects.Objects) -> bool:
    folder = operator.COMPOSITIONS_DIR / "worker-cluster"
    wanted = [*api.platform_crds()]
    for name in ("definition.yaml", "composition.yaml"):
        wanted += catalog.load_documents(folder / name)
    for obj in wanted:
        if await hub.get(obj) is None:
            return False
    return True


async def _with_hub(kubeconfig: str, act: Callable[[objects.Objects], Any]) -> Any:
    rest = KubeRest.from_kubeconfig(kubeconfig)
    try:
        return await act(objects.Objects(rest))
    finally:
        await rest.close()


def _uninstall(root: Path) -> None:
    """Nothing to undo: the CRDs go with the management cluster, which Pulumi deletes next."""


# --- Maestro server, provisioner, hub controllers --------------------------------------------------


def _start_maestro(root: Path, inputs: Values, previous: Values) -> Values:
    env = _child(root, "maestro")
    env.down()
    log = env.path("logs") / "maestro-server.log"
    # A restart keeps the port it had, so the operators and users need not follow it.
    port = int(inputs["port"]) or int(previous.get("address", ":0").rsplit(":", 1)[1])
    # Every part's identity comes from the stack's one CA (the management cluster's folder), which
    # also issues the provisioned clusters' agents theirs.
    address = platform.start_server(
        env,
        inputs["dsn"],
        inputs["kafka"],
        log,
        port=port,
        server_id="maestro-bootstrap",
        identities=Environment(root),
    )
    return {"address": address, "log": str(log)}


def _start_provisioner(root: Path, inputs: Values, previous: Values) -> Values:
    env = _child(root, "provisioner")
    env.down()
    log = env.path("logs") / "provisioner.log"
    kubeconfig = Path(inputs["kubeconfig"])
    tls = platform.identity(Environment(root), PROVISIONER_IDENTITY)
    platform.start_provisioner(env, kubeconfig, inputs["maestro"], inputs["kafka"], root, log, tls)
    return {"log": str(log)}


def _start_controllers(root: Path, inputs: Values, previous: Values) -> Values:
    env = _child(root, "controllers")
    env.down()
    log = env.path("logs") / "controllers.log"
    tls = platform.identity(Environment(root), CONTROLLERS_IDENTITY)
    # with the hub's Argo CD, the controllers write the mirrors' resource trees into its Redis
    trees = []
    if inputs.get("argocdRedis"):
        trees = [
            "--argocd-redis",
            inputs["argocdRedis"],
            "--argocd-redis-password-file",
            inputs["argocdRedisPassword"],
        ]
    platform.start_controllers(env, Path(inputs["kubeconfig"]), inputs["maestro"], log, tls, *trees)
    return {"log": str(log)}


# --- the hub's Argo CD API server ----------------------------------------------------------------


def _start_hub_argocd(root: Path, inputs: Values, previous: Values) -> Values:
    env = _child(root, "hub-argocd")
    env.down()
    server = hub_argocd.start(env, Path(inputs["kubeconfig"]), identities=Environment(root))
    return {
        "url": server.url,
        "redis": server.redis.address,
        "redisPassword": str(server.redis.credentials / "auth"),
        "passwordCommand": server.password_command(),
        "loginCommand": server.login_command(),
    }


# --- the demo's apps repository and cluster claims -------------------------------------------------


def claims(repo: str, count: int) -> list[Values]:
    """The demo's claims: a team namespace and ``count`` local worker clusters labelled for the
    demo's ApplicationSet, each syncing ``worker-apps`` from ``repo``."""
    namespace: Values = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": CLAIMS_NAMESPACE}}
    return [namespace] + [
        {
            "apiVersion": CLAIM_GROUP,
            "kind": "ClusterClaim",
            "metadata": {"name": f"demo-{i}", "namespace": CLAIMS_NAMESPACE},
            "spec": {
                "parameters": {
                    "provider": "local",
                    "labels": dict(CLUSTER_LABELS),
                    # the cluster's own apps; configmap1 comes only from the ApplicationSet
                    "apps": {"repoURL": repo, "path": "apps/platform"},
                },
                "writeConnectionSecretToRef": {"name": f"demo-{i}-kubeconfig"},
            },
        }
        for i in range(1, count + 1)
    ]


def _demo_folder(root: Path) -> Path:
    return root / "demo"


def _start_demo(root: Path, inputs: Values, previous: Values) -> Values:
    folder = _demo_folder(root)
    shutil.rmtree(folder, ignore_errors=True)
    repo = gitrepo.demo_apps_repo(folder / "apps")
    manifest = folder / "claims.yaml"
    manifest.write_text(yaml.safe_dump_all(claims(repo, int(inputs["clusters"])), sort_keys=False))
    return {"repo": repo, "claims": str(manifest)}


def _demo_present(root: Path, outputs: Values) -> bool:
    return (_demo_folder(root) / "apps" / ".git").is_dir() and Path(outputs.get("claims", "")).is_file()


def _stop_demo(root: Path) -> None:
    shutil.rmtree(_demo_folder(root), ignore_errors=True)


COMPONENTS: dict[str, Component] = {
    "management-cluster": Component(_start_cluster, _cluster_running, _stop_cluster),
    "postgres": Component(_start_postgres, _alive_child("postgres"), _stop_child("postgres")),
    "kafka": Component(_start_kafka, _alive_child("kafka"), _stop_child("kafka")),
    "platform": Component(_install, _installed, _uninstall),
    "maestro-server": Component(_start_maestro, _alive_child("maestro"), _stop_child("maestro")),
    "provisioner": Component(_start_provisioner, _alive_child("provisioner"), _stop_child("provisioner")),
    "hub-argocd": Component(_start_hub_argocd, _alive_child("hub-argocd"), _stop_child("hub-argocd")),
    "controllers": Component(_start_controllers, _alive_child("controllers"), _stop_child("controllers")),
    "demo": Component(_start_demo, _demo_present, _stop_demo),
}
