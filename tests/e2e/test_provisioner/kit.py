"""The provisioner's platform for e2e tests, and what its tests read of it.

``platform`` (module scope): on the session's real hub, ``fleetplane provisioner install`` then
``fleetplane provisioner run`` (the local provider, short periods) as a subprocess, against the
module's Maestro server (``e2e_maestro``: a module sets ``MAESTRO_DELETION_GRACE`` for its own);
``provisioner_args`` adds options. Its ``/metrics`` tell a test when a pass has run, rather than a
sleep of a resync period. The helpers read what a user reads: the claim's conditions, the
connection secret, the hub inventory, Maestro, Events, and a ``kubectl get --watch`` of a composite.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from kubeio import credentials, objects
from kubeio.rest import KubeRest
from localinfra import gitrepo, kube, kubectl, paths, ports, process
from localinfra.environment import Environment
from maestro.client import MaestroClient
from tests.e2e.conftest import INVENTORY_NAMESPACE, MaestroUnderTest, Subcommand, eventually, fleetplane
from tests.integration import probing
from trust.identity import Identity

GROUP = "platform.fleetplane.io/v1alpha1"
TEAM = "team-a"


@dataclasses.dataclass
class Platform:
    hub: kube.Cluster
    hub_api: objects.Objects
    maestro: MaestroUnderTest
    provisioner: Subcommand
    clusters: Environment
    apps_repo: str
    #: where the provisioner serves ``/metrics``
    metrics_port: int

    async def eventually(
        self, what: str, check: Callable[[], Awaitable[tuple[bool, Any]]], timeout: float = 240
    ) -> Any:
        return await eventually(what, check, self.provisioner.log, timeout=timeout)

    async def claim(self, name: str) -> dict[str, Any] | None:
        return await self.hub_api.get(claim_ref(name))

    async def ready(self, name: str) -> tuple[bool, Any]:
        claim = await self.claim(name)
        conditions = ((claim or {}).get("status") or {}).get("conditions") or []
        ok = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
        return ok, conditions or (claim or {}).get("status")

    async def metric(self, name: str, **labels: str) -> float:
        """A sample of the provisioner's ``/metrics``, as Prometheus scrapes it (0 when absent)."""
        return probing.value(await probing.scrape(self.metrics_port), name, **labels)

    async def composite_passes(self) -> float:
        """The composite passes the provisioner finished (every composite's, since it started)."""
        return await self.metric(
            "fleetplane_provisioner_reconciles_total", kind="composite", operation="reconcile", outcome="done"
        )


def claim_ref(name: str) -> dict[str, Any]:
    return {"apiVersion": GROUP, "kind": "ClusterClaim", "metadata": {"name": name, "namespace": TEAM}}


#: what the main case's works apply besides Argo CD Applications: ConfigMaps in default
CONFIGMAPS_IN_DEFAULT = [
    {
        "apiGroups": [""],
        "resources": ["configmaps"],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
        "namespace": "default",
    }
]


def claim(
    name: str, repo: str, labels: dict[str, str], agent: list[dict[str, Any]] | None = None, **spec: Any
) -> dict[str, Any]:
    extra = {"agentPermissions": agent} if agent else {}
    return {
        **claim_ref(name),
        "spec": {
            "parameters": {
                "provider": "local",
                "labels": labels,
                "apps": {"repoURL": repo, "path": "apps/configmap1"},
                **extra,
            },
            "writeConnectionSecretToRef": {"name": f"{name}-kubeconfig"},
            **spec,
        },
    }


@pytest.fixture(scope="module")
def provisioner_args() -> list[str]:
    """More options for ``fleetplane provisioner run``: a module using ``platform`` may override it."""
    return []


@pytest.fixture(scope="module")
async def platform(
    hub: kube.Cluster,
    infra_env: Environment,
    e2e_maestro: MaestroUnderTest,
    tmp_path_factory: pytest.TempPathFactory,
    provisioner_args: list[str],
) -> AsyncIterator[Platform]:
    folder = tmp_path_factory.mktemp("provisioner")
    repo = await asyncio.to_thread(gitrepo.demo_apps_repo, folder / "apps")
    await asyncio.to_thread(fleetplane, "provisioner", "install", "--kubeconfig", str(hub.kubeconfig))
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": TEAM}}
    await asyncio.to_thread(kubectl.apply, hub.kubeconfig, [namespace])
    metrics_port = ports.free_port()
    provisioner = Subcommand(
        [
            "provisioner",
            "run",
            "--kubeconfig",
            str(hub.kubeconfig),
            "--maestro",
            e2e_maestro.address,
            "--kafka",
            e2e_maestro.settings.kafka.bootstrap,
            "--topic-prefix",
            e2e_maestro.settings.topics.prefix,
            "--local-env",
            str(infra_env.root),
            # an admin: it registers and deletes clusters (its local agents' identities come from
            # the same CA, the environment's)
            "--tls-dir",
            str(e2e_maestro.identity(Identity.admin("fleetplane-provisioner")).ca.parent),
            "--inventory-namespace",
            INVENTORY_NAMESPACE,
            "--resync",
            "10",
            # the deletion-order case waits for the agent and Argo CD: ample on a loaded machine
            "--drain",
            "180",
            "--log-level",
            "info",
            "--metrics-port",
            str(metrics_port),
            *provisioner_args,
        ],
        folder / "provisioner.log",
    )
    provisioner.start()
    rest = KubeRest.from_kubeconfig(hub.kubeconfig)
    try:
        served = Platform(
            hub,
            objects.Objects(rest),
            e2e_maestro,
            provisioner,
            infra_env.child("provisioned"),
            repo,
            metrics_port,
        )

        async def claim_kind_served() -> tuple[bool, Any]:
            crd = await rest.request("GET", f"{objects.CRD_PATH}/clusterclaims.platform.fleetplane.io")
            conditions = (crd.get("status") or {}).get("conditions") or []
            return any(c["type"] == "Established" and c["status"] == "True" for c in conditions), conditions

        await served.eventually(
            "the provisioner serving the ClusterClaim kind", claim_kind_served, timeout=60
        )
        yield served
    finally:
        died = provisioner.died()
        provisioner.stop()
        await rest.close()
    if died is not None:
        pytest.fail(f"the provisioner exited with {died}:\n{process.log_tail(provisioner.log, 60)}")


async def worker_api(platform: Platform, secret_name: str, namespace: str = TEAM) -> objects.Objects:
    secret = await platform.hub_api.get(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": secret_name, "namespace": namespace}}
    )
    assert secret is not None, f"connection secret {namespace}/{secret_name} missing"
    kubeconfig = yaml.safe_load(base64.b64decode(secret["data"]["kubeconfig"]))
    return objects.Objects(KubeRest(await asyncio.to_thread(credentials.from_kubeconfig_dict, kubeconfig)))


def configmap(name: str, data: dict[str, str] | None = None) -> dict[str, Any]:
    """A ConfigMap in a worker's ``default`` namespace: a manifest to send, or (without ``data``)
    the reference to read it back by."""
    manifest: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
    }
    if data is not None:
        manifest["data"] = data
    return manifest


def secret_ref(namespace: str, name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace}}


def certificate(secret: dict[str, Any], key: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(base64.b64decode(secret["data"][key]))


async def inventory_entry(platform: Platform, cluster: str) -> dict[str, Any] | None:
    reply = await platform.hub_api.rest.request(
        "GET",
        f"/api/v1/namespaces/{INVENTORY_NAMESPACE}/secrets",
        query=[("labelSelector", f"fleetplane.io/composite-name={cluster}")],
    )
    items = reply.get("items") or []
    return items[0] if items else None


@contextlib.asynccontextmanager
async def maestro_client(platform: Platform) -> AsyncIterator[MaestroClient]:
    credentials = platform.maestro.credentials()
    async with MaestroClient(
        platform.maestro.address, source="e2e-provisioner", credentials=credentials
    ) as client:
        yield client


async def revision_of(platform: Platform, name: str) -> str:
    found = await platform.claim(name) or {}
    return str((found.get("status") or {}).get("compositionRevision") or "")


async def patch(platform: Platform, *args: str) -> None:
    await asyncio.to_thread(kubectl.run, platform.hub.kubeconfig, "patch", *args)


def events(platform: Platform, reason: str) -> Callable[[], Awaitable[tuple[bool, Any]]]:
    """A check: the Events with ``reason`` in the claims' namespace (what `kubectl get events` shows)."""

    async def found() -> tuple[bool, Any]:
        reply = await platform.hub_api.rest.request("GET", f"/api/v1/namespaces/{TEAM}/events")
        messages = [e.get("message", "") for e in reply.get("items") or [] if e.get("reason") == reason]
        return bool(messages), messages

    return found


def watch_composite(platform: Platform, cluster: str, out: Path) -> subprocess.Popen[bytes]:
    """``kubectl get --watch`` on the composite, into ``out`` (a pipe would fill and stall it): its
    DELETED event carries the composite's last status."""
    with out.open("wb") as sink:
        return subprocess.Popen(
            [
                str(paths.bin_dir() / "kubectl"), "--kubeconfig", str(platform.hub.kubeconfig),
                "get", "workerclusters", "--watch", "--output-watch-events", "-o", "json",
                "--field-selector", f"metadata.name={cluster}",
            ],
            stdout=sink,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip


def last_state(watch: subprocess.Popen[bytes], out: Path) -> dict[str, Any]:
    """The object of the watch's DELETED event (the watch is stopped; a last event it was writing
    when stopped is cut short and left out)."""
    watch.terminate()
    watch.wait(timeout=30)
    text = out.read_text()
    decoder, events, at = json.JSONDecoder(), [], 0
    with contextlib.suppress(json.JSONDecodeError):
        while text[at:].strip():
            at += len(text[at:]) - len(text[at:].lstrip())
            event, at = decoder.raw_decode(text, at)
            events.append(event)
    deleted = [e["object"] for e in events if e.get("type") == "DELETED"]
    assert deleted, [e.get("type") for e in events]
    return dict(deleted[-1])
