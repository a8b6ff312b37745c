"""When the hub controllers are ready (``controllers.operator``), as their ``/readyz`` says.

The operator is built as ``fleetplane controllers run`` builds it, against a loopback hub (aiohttp)
and a loopback gRPC server with the standard health service in place of the Maestro server.

Cases: not ready while kopf starts; ready once kopf watches ApplicationSets and Secrets, the hub
answers and the Maestro server serves; a Maestro server that says NOT_SERVING, or is stopped, is
named with its address; a background loop that fails is named with its error, and stays so while
the rest is well; stopping the operator leaves no loop reported.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import kopf
import pytest
import yaml
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from controllers import operator
from localinfra import ports
from maestro.client import Credentials


@pytest.fixture
async def hub_kubeconfig(tmp_path: Path) -> AsyncIterator[Path]:
    async def answer(request: web.Request) -> web.Response:
        if request.path == "/readyz":
            return web.Response(text="ok")
        return web.json_response({"items": [], "metadata": {}})

    port = ports.free_port()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
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
    yield kubeconfig
    await runner.cleanup()


class HealthServer:
    """A gRPC server on loopback with the health service alone."""

    def __init__(self) -> None:
        self.port = ports.free_port()
        self.servicer = health.aio.HealthServicer()
        self.server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(self.servicer, self.server)
        self.server.add_insecure_port(f"127.0.0.1:{self.port}")

    async def start(self) -> None:
        await self.server.start()
        await self.servicer.set("", health_pb2.HealthCheckResponse.SERVING)


@pytest.fixture
async def maestro() -> AsyncIterator[HealthServer]:
    server = HealthServer()
    await server.start()
    yield server
    await server.server.stop(None)


def kopf_watches_everything(built: operator.Operator) -> None:
    built.kopf_state.started.set()
    built.kopf_state.insights.ready_resources.set()
    built.kopf_state.insights.watched_resources.update(
        {kopf.Resource("argoproj.io", "v1alpha1", "applicationsets"), kopf.Resource("", "v1", "secrets")}
    )


async def test_ready_once_kopf_watches_and_the_hub_and_maestro_answer(
    hub_kubeconfig: Path, maestro: HealthServer
) -> None:
    address = f"127.0.0.1:{maestro.port}"
    built = operator.build(
        operator.OperatorSettings(
            kubeconfig=str(hub_kubeconfig), maestro=address, maestro_credentials=Credentials.insecure()
        )
    )
    try:
        assert await built.readiness.problems() == ["starting: kopf's startup handlers have not finished"]
        kopf_watches_everything(built)
        assert await built.readiness.problems() == []

        await maestro.servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
        assert await built.readiness.problems() == [
            f"the Maestro server at {address} says NOT_SERVING (its /readyz names why)"
        ]
        await maestro.server.stop(None)
        (problem,) = await built.readiness.problems()
        assert problem.startswith(f"the Maestro server at {address} does not answer: UNAVAILABLE: "), problem
    finally:
        await built.stop()


async def test_a_failed_background_loop_is_named_until_the_operator_stops(
    hub_kubeconfig: Path, maestro: HealthServer
) -> None:
    built = operator.build(
        operator.OperatorSettings(
            kubeconfig=str(hub_kubeconfig),
            maestro=f"127.0.0.1:{maestro.port}",
            maestro_credentials=Credentials.insecure(),
        )
    )
    kopf_watches_everything(built)

    async def broken() -> None:
        raise RuntimeError("the status book is inconsistent")

    built.status.run = broken  # type: ignore[method-assign]
    built.start_background()
    for _ in range(10):
        await asyncio.sleep(0)
    try:
        assert await built.readiness.problems() == [
            "background loop status-aggregation stopped: RuntimeError('the status book is inconsistent')"
        ]
    finally:
        await built.stop()
    assert built.background == []
