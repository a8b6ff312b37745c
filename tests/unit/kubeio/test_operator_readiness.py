"""What a kopf operator's readiness asks of kopf and of its API server (``kubeio.operator_readiness``).

Cases, kopf: not ready while its startup handlers run, then while it has not listed the API
server's resources, then while a kind it must watch is not served (each missing kind named);
ready once it watches them all. API server: an answer to any request within ``fresh`` seconds is
enough (no request made); past that, its /readyz is asked once: 200 is ready, another status is
named with its body, no listener or no answer in time is named with the server's address. Which
replies count as answers: a 404 does, a refused token or a 503 does not. A real aiohttp server on
loopback plays the API server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import kopf
import pytest
from aiohttp import web

from kubeio import credentials
from kubeio.errors import ClusterError, ClusterUnavailableError, NotFoundError
from kubeio.operator_readiness import Kind, KopfState, api_server_check
from kubeio.rest import KubeRest, RetrySettings
from localinfra import ports

APPSETS = Kind("argoproj.io", "applicationsets")
SECRETS = Kind("", "secrets")


async def test_kopf_is_ready_once_started_listed_and_watching_every_kind() -> None:
    state = KopfState()
    check = state.check([APPSETS, SECRETS])
    assert await check() == "starting: kopf's startup handlers have not finished"
    state.started.set()
    assert await check() == "starting: kopf has not listed the API server's resources yet"
    state.insights.ready_resources.set()
    assert await check() == (
        "kopf does not watch applicationsets.argoproj.io, secrets: the API server does not serve "
        "those kinds (is the CRD installed? kubectl api-resources)"
    )
    state.insights.watched_resources.add(kopf.Resource("", "v1", "secrets"))
    reason = await check()
    assert reason is not None and reason.startswith("kopf does not watch applicationsets.argoproj.io: ")
    state.insights.watched_resources.add(kopf.Resource("argoproj.io", "v1alpha1", "applicationsets"))
    assert await check() is None


class ApiServer:
    """Answers /readyz with ``ready`` (status, body) after ``delay``; anything else with ``other``."""

    def __init__(self) -> None:
        self.ready: tuple[int, str] = (200, "ok")
        self.other = 200
        self.delay = 0.0
        self.readyz_asked = 0

    async def handle(self, request: web.Request) -> web.Response:
        if request.path == "/readyz":
            self.readyz_asked += 1
            await asyncio.sleep(self.delay)
            return web.Response(status=self.ready[0], text=self.ready[1])
        return web.json_response({"message": "as scripted"}, status=self.other)


@pytest.fixture
async def api() -> AsyncIterator[tuple[ApiServer, KubeRest]]:
    fake, port = ApiServer(), ports.free_port()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    rest = KubeRest(
        credentials.Credentials(f"http://127.0.0.1:{port}", None, ""),
        RetrySettings(budget=0.2, initial_backoff=0.01, max_backoff=0.05),
    )
    yield fake, rest
    await rest.close()
    await runner.cleanup()


async def test_a_recent_answer_is_enough_else_readyz_is_asked(api: tuple[ApiServer, KubeRest]) -> None:
    fake, rest = api
    now = [1000.0]
    check = api_server_check(rest, "the hub's API server", fresh=30.0, clock=lambda: now[0])
    assert await check() is None
    assert fake.readyz_asked == 1, "never answered: asked"
    rest.answered_at = now[0]
    now[0] += 29
    assert await check() is None
    assert fake.readyz_asked == 1, "answered 29s ago: not asked"
    now[0] += 2
    fake.ready = (503, "[-]etcd failed: reason withheld\nreadyz check failed")
    assert await check() == (
        f"the hub's API server at {rest.server} is not ready: HTTP 503: "
        "[-]etcd failed: reason withheld\nreadyz check failed"
    )
    assert fake.readyz_asked == 2


async def test_an_api_server_that_does_not_answer_is_named(api: tuple[ApiServer, KubeRest]) -> None:
    fake, rest = api
    fake.delay = 1.0
    check = api_server_check(rest, "the hub's API server", timeout=0.1)
    assert await check() == f"the hub's API server at {rest.server} did not answer within 0.1s"

    gone = KubeRest(credentials.Credentials(f"http://127.0.0.1:{ports.free_port()}", None, ""))
    try:
        reason = await api_server_check(gone, "the management cluster's API server")()
    finally:
        await gone.close()
    assert reason is not None
    assert reason.startswith(f"the management cluster's API server at {gone.server} does not answer: ")


async def test_what_counts_as_the_api_server_answering(api: tuple[ApiServer, KubeRest]) -> None:
    fake, rest = api
    fake.other = 403
    with pytest.raises(ClusterError):
        await rest.request("GET", "/api/v1/secrets")
    assert rest.answered_at is None, "a refusal of our credentials is no answer"
    fake.other = 503
    with pytest.raises(ClusterUnavailableError):
        await rest.request("GET", "/api/v1/secrets")
    assert rest.answered_at is None, "a 503 is no answer"
    fake.other = 404
    with pytest.raises(NotFoundError):
        await rest.request("GET", "/api/v1/namespaces/x/secrets/y")
    assert rest.answered_at is not None
