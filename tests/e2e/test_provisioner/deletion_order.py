"""The order in which what a claim had disappears once it is deleted, poll by poll."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from kubeio import objects
from localinfra import kubectl, process
from localinfra.environment import Environment
from maestro import client_errors
from maestro.client import MaestroClient
from tests.e2e.test_provisioner.kit import TEAM, Platform, inventory_entry


async def deletion_order(
    platform: Platform,
    name: str,
    cluster: str,
    worker: objects.Objects,
    client: MaestroClient,
    work_object: dict[str, Any],
    application: dict[str, Any],
) -> dict[str, int]:
    """Delete the claim and poll what it had until the claim is gone: for each thing, the first poll
    round that found it gone."""
    clusters = Environment(platform.clusters.root)
    configmap1 = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "configmap1", "namespace": "default"},
    }

    async def absent(obj: dict[str, Any]) -> bool:
        try:
            return await worker.get(obj) is None
        except Exception:  # its API server is gone: so is the object
            return True

    async def works_gone() -> bool:
        records, _ = await client.list()
        return not [r for r in records if r.bundle.consumer == cluster]

    async def consumer_gone() -> bool:
        try:
            await client.get_consumer(cluster)
        except client_errors.NotFound:
            return True
        return False

    def stopped(prefix: str) -> bool:
        running = Environment(clusters.root).processes
        return not any(n.startswith(prefix) and process.is_alive(r) for n, r in running.items())

    async def inventory_gone() -> bool:
        return await inventory_entry(platform, cluster) is None

    checks: dict[str, Callable[[], Awaitable[bool]]] = {
        "inventory entry": inventory_gone,
        "work's ConfigMap": lambda: absent(work_object),
        "work in Maestro": works_gone,
        "configmap1 (from worker-apps)": lambda: absent(configmap1),
        "worker-apps Application": lambda: absent(application),
        "agent": lambda: asyncio.to_thread(stopped, f"{cluster}/maestro-agent"),
        "consumer": consumer_gone,
        "Argo CD": lambda: asyncio.to_thread(stopped, f"{cluster}/argocd-"),
        "kube-apiserver": lambda: asyncio.to_thread(stopped, f"{cluster}/kube-apiserver"),
    }
    for what, check in checks.items():
        assert not await check(), f"{what} is gone before the claim is deleted"
    await asyncio.to_thread(
        kubectl.run, platform.hub.kubeconfig, "delete", "clusterclaim", name, "-n", TEAM, "--wait=false"
    )
    order: dict[str, int] = {}
    deadline = asyncio.get_running_loop().time() + 300
    claim_gone = False
    for poll in range(1_000_000):
        for what, check in checks.items():
            if what not in order and await check():
                order[what] = poll
        if claim_gone:
            break
        # one more round once the claim is gone, for what went during this one
        claim_gone = await platform.claim(name) is None
        assert asyncio.get_running_loop().time() < deadline, f"claim {name} not deleted; gone so far: {order}"
        await asyncio.sleep(0.1)
    assert set(order) == set(checks), f"left behind: {set(checks) - set(order)}"
    return order
