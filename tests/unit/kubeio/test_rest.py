"""Requests to the API server: which failures are retried, and what the others become.

Cases: a request retries through 503/429 answers and a server that is not listening yet, then
succeeds; one that keeps failing becomes ClusterUnavailableError after its budget; 404/409/422 map
to NotFoundError, ConflictError and ClusterError with the server's message, without retrying; a
server-side apply body is sent as JSON with the apply-patch content type and the query string; a
bearer token is sent when the credentials carry one; a refused token is loaded again (once for
requests refused together) and the requests go through with the new one, while one that stays
refused is an error, not a loop. A real aiohttp server on loopback answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from aiohttp import web

from kubeio import credentials
from kubeio.errors import ClusterError, ClusterUnavailableError, ConflictError, NotFoundError
from kubeio.rest import APPLY_PATCH, KubeRest, RetrySettings
from localinfra import ports

FAST = RetrySettings(budget=3.0, initial_backoff=0.01, max_backoff=0.05)

Answer = tuple[int, dict[str, Any]]


class FakeApiServer:
    """Answers each request with the next scripted (status, body), repeating the last one."""

    def __init__(self) -> None:
        self.answers: list[Answer] = [(200, {})]
        # when set, every answer is these bytes (a watch stream's lines)
        self.raw: bytes | None = None
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append((request.method, request.path_qs, dict(request.headers), await request.read()))
        if self.raw is not None:
            return web.Response(status=200, body=self.raw, content_type="application/json")
        status, body = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")


async def _serve(fake: FakeApiServer, port: int) -> web.AppRunner:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


@pytest.fixture
async def api() -> AsyncIterator[tuple[FakeApiServer, Callable[..., KubeRest]]]:
    fake, port = FakeApiServer(), ports.free_port()
    runner = await _serve(fake, port)
    clients: list[KubeRest] = []

    def client(retry: RetrySettings = FAST, token: str = "") -> KubeRest:
        clients.append(KubeRest(credentials.Credentials(f"http://127.0.0.1:{port}", None, token), retry))
        return clients[-1]

    yield fake, client
    for c in clients:
        await c.close()
    await runner.cleanup()


RECOVERY_CASES = [
    ("server-restarting", [(503, {"message": "starting"}), (503, {}), (200, {"ok": True})]),
    ("throttled", [(429, {"message": "slow down"}), (200, {"ok": True})]),
    ("at-once", [(200, {"ok": True})]),
]


@pytest.mark.parametrize("answers", [c[1] for c in RECOVERY_CASES], ids=[c[0] for c in RECOVERY_CASES])
async def test_transient_answers_are_retried_until_success(api: Any, answers: list[Answer]) -> None:
    fake, client = api
    fake.answers = list(answers)
    assert await client().request("GET", "/api/v1/namespaces") == {"ok": True}
    assert len(fake.seen) == len(answers)


async def test_a_server_that_comes_up_late_is_waited_for() -> None:
    fake, port = FakeApiServer(), ports.free_port()
    fake.answers = [(200, {"kind": "NamespaceList"})]
    client = KubeRest(credentials.Credentials(f"http://127.0.0.1:{port}", None), FAST)

    async def start_later() -> web.AppRunner:
        await asyncio.sleep(0.3)
        return await _serve(fake, port)

    starter = asyncio.create_task(start_later())
    try:
        assert await client.request("GET", "/api/v1/namespaces") == {"kind": "NamespaceList"}
    finally:
        await client.close()
        await (await starter).cleanup()


async def test_a_server_that_keeps_failing_becomes_unavailable_after_the_budget(api: Any) -> None:
    fake, client = api
    fake.answers = [(503, {"message": "etcd is down"})]
    with pytest.raises(ClusterUnavailableError, match=r"did not answer within 0s.*etcd is down"):
        await client(RetrySettings(budget=0.2, initial_backoff=0.01, max_backoff=0.02)).request("GET", "/x")
    assert len(fake.seen) > 1


REFUSAL_CASES = [
    ("not-found", 404, NotFoundError, 'configmaps "x" not found'),
    ("conflict", 409, ConflictError, "already exists"),
    ("invalid", 422, ClusterError, "spec.replicas: Invalid value"),
]


@pytest.mark.parametrize(
    ("status", "error", "message"), [c[1:] for c in REFUSAL_CASES], ids=[c[0] for c in REFUSAL_CASES]
)
async def test_refusals_carry_the_servers_message_and_are_not_retried(
    api: Any, status: int, error: type[Exception], message: str
) -> None:
    fake, client = api
    fake.answers = [(status, {"kind": "Status", "message": message, "reason": "Because"})]
    with pytest.raises(error, match=message):
        await client().request("GET", "/api/v1/namespaces/default/configmaps/x")
    assert len(fake.seen) == 1


async def test_server_side_apply_sends_json_with_the_apply_content_type_and_query(api: Any) -> None:
    fake, client = api
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}
    await client(token="Bearer abc").request(
        "PATCH",
        "/api/v1/namespaces/d/configmaps/a",
        query=[("fieldManager", "me")],
        body=body,
        content_type=APPLY_PATCH,
    )
    method, path, headers, sent = fake.seen[0]
    assert (method, path) == ("PATCH", "/api/v1/namespaces/d/configmaps/a?fieldManager=me")
    assert headers["Content-Type"] == APPLY_PATCH
    assert headers["Authorization"] == "Bearer abc"
    assert orjson.loads(sent) == body


async def test_list_all_follows_continue_tokens_and_returns_the_lists_version(
    api: tuple[FakeApiServer, Callable[..., KubeRest]],
) -> None:
    fake, client = api
    fake.answers = [
        (200, {"items": [{"n": 1}, {"n": 2}], "metadata": {"continue": "t1", "resourceVersion": "7"}}),
        (200, {"items": [{"n": 3}], "metadata": {"resourceVersion": "7"}}),
    ]
    items, version = await client().list_all("/api/v1/configmaps", query=[("labelSelector", "a=b")], page=2)
    assert [i["n"] for i in items] == [1, 2, 3] and version == "7"
    assert [path for _, path, _, _ in fake.seen] == [
        "/api/v1/configmaps?labelSelector=a%3Db&limit=2",
        "/api/v1/configmaps?labelSelector=a%3Db&limit=2&continue=t1",
    ]


async def test_a_stream_yields_each_json_line_even_one_larger_than_aiohttps_line_limit(
    api: tuple[FakeApiServer, Callable[..., KubeRest]],
) -> None:
    fake, client = api
    big = "x" * 200_000
    fake.raw = (
        b'{"type": "ADDED", "object": {"v": "' + big.encode() + b'"}}\n{"type": "DELETED", "object": {}}\n'
    )
    events = [e async for e in client().stream("/api/v1/configmaps", query=[("watch", "1")])]
    assert [e["type"] for e in events] == ["ADDED", "DELETED"]
    assert events[0]["object"]["v"] == big


class TokenChecker(FakeApiServer):
    """Takes only ``Bearer <valid>``; answers 401 otherwise, as an API server does."""

    def __init__(self, valid: str) -> None:
        super().__init__()
        self.valid = valid

    async def handle(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.valid}":
            self.seen.append((request.method, request.path_qs, dict(request.headers), b""))
            return web.Response(
                status=401, body=b'{"message":"Unauthorized"}', content_type="application/json"
            )
        return await super().handle(request)


def _rotating(server: str, tokens: list[str]) -> credentials.Credentials:
    """Credentials whose reload reads the next token, as a rotated token file would give."""

    def load() -> credentials.Credentials:
        token = tokens.pop(0) if len(tokens) > 1 else tokens[0]
        return credentials.Credentials(server, None, f"Bearer {token}", load)

    return load()


async def test_a_refused_token_is_loaded_again_and_the_request_sent_with_the_new_one() -> None:
    fake, port = TokenChecker("new"), ports.free_port()
    fake.answers = [(200, {"kind": "NamespaceList"})]
    runner = await _serve(fake, port)
    client = KubeRest(_rotating(f"http://127.0.0.1:{port}", ["old", "new"]), FAST)
    try:
        # several refused at once load the credentials once, and all go through with the new ones
        replies = await asyncio.gather(*(client.request("GET", "/api/v1/namespaces") for _ in range(5)))
        assert replies == [{"kind": "NamespaceList"}] * 5
        assert client.reloads == 1
        assert [h["Authorization"] for _, _, h, _ in fake.seen].count("Bearer new") == 5
    finally:
        await client.close()
        await runner.cleanup()


async def test_a_token_that_stays_refused_is_an_error_not_a_loop() -> None:
    fake, port = TokenChecker("never"), ports.free_port()
    runner = await _serve(fake, port)
    client = KubeRest(_rotating(f"http://127.0.0.1:{port}", ["old"]), FAST)
    try:
        with pytest.raises(ClusterError, match="Unauthorized") as refused:
            await client.request("GET", "/api/v1/namespaces")
        assert refused.value.status == 401
        assert client.reloads == 0 and len(fake.seen) == 1
    finally:
        await client.close()
        await runner.cleanup()
