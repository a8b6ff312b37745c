"""Status writes are not queued behind the propagation's mirror creates.

At fleet scale the propagation keeps every hub connection it has busy with server-side applies of
new mirrors for minutes; a status write waiting for one of those connections showed up on the hub
long after Maestro had it. Here a loopback hub holds every apply until released: with the
propagation's whole pool (and more) waiting, a status write still lands at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from controllers import operator
from controllers.hub import ARGOCD_GROUP, ARGOCD_VERSION
from kubeio.rest import APPLY_PATCH, JSON_PATCH
from localinfra import ports
from maestro.client import Credentials


class SlowHub:
    """Answers JSON patches at once; holds server-side applies until ``release`` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.applies_waiting = 0
        self.status_patches = 0

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        if request.content_type == APPLY_PATCH:
            self.applies_waiting += 1
            await self.release.wait()
            self.applies_waiting -= 1
        elif request.content_type == JSON_PATCH:
            self.status_patches += 1
        return web.json_response({})


@pytest.fixture
async def slow_hub(tmp_path: Path) -> AsyncIterator[tuple[SlowHub, Path]]:
    hub, port = SlowHub(), ports.free_port()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", hub.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    kubeconfig = tmp_path / "hub.kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "hub", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                "users": [{"name": "hub", "user": {"token": "t"}}],
                "contexts": [{"name": "hub", "context": {"cluster": "hub", "user": "hub"}}],
                "current-context": "hub",
            }
        )
    )
    yield hub, kubeconfig
    hub.release.set()
    await runner.cleanup()


def _mirror(index: int) -> dict[str, object]:
    return {
        "apiVersion": f"{ARGOCD_GROUP}/{ARGOCD_VERSION}",
        "kind": "Application",
        "metadata": {"name": f"app-{index}", "namespace": "argocd"},
        "spec": {"project": "default"},
    }


async def test_a_status_write_lands_while_every_propagation_connection_waits_on_a_create(
    slow_hub: tuple[SlowHub, Path],
) -> None:
    hub, kubeconfig = slow_hub
    built = operator.build(
        operator.OperatorSettings(
            kubeconfig=str(kubeconfig),
            maestro="127.0.0.1:1",
            maestro_credentials=Credentials.insecure(),
        )
    )
    propagation, status = built.propagation.hub, built.status.hub
    creates = [
        asyncio.create_task(propagation.apply_application(_mirror(i), field_manager="test", force=False))
        for i in range(propagation.max_connections * 2)
    ]
    try:
        for _ in range(200):
            if hub.applies_waiting == propagation.max_connections:
                break
            await asyncio.sleep(0.01)
        assert hub.applies_waiting == propagation.max_connections, "the propagation's pool is not full"

        await asyncio.wait_for(
            status.replace_application_status("argocd", "app-0", {"sync": {"status": "Synced"}}), 5
        )
        assert hub.status_patches == 1
        assert not any(c.done() for c in creates), "a create finished before the hub released it"
    finally:
        hub.release.set()
        await asyncio.gather(*creates, return_exceptions=True)
        await built.hub_client.close()
        await built.status_hub_client.close()
        await built.maestro.close()
