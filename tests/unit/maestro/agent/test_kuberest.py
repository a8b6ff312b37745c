"""Requests to the API server: which failures are retried, and what the others become.

Cases: connection failures, timeouts, TLS failures, 429 and 5xx are transient, 4xx are not;
a request retries through refused connections and 503/429 answers and then succeeds; one that
keeps failing becomes ClusterUnavailableError after its budget; 404/409/422 map to NotFoundError,
ConflictError and ClusterError with the server's message, without retrying; a server-side apply
body is sent as JSON bytes with the apply-patch content type. A fake ApiClient stands in for the
network; the calls still go through `asyncio.to_thread`.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import urllib3
from kubernetes.client.exceptions import ApiException

from maestro.agent.errors import ClusterError, ClusterUnavailableError, ConflictError, NotFoundError
from maestro.agent.kuberest import APPLY_PATCH, KubeRest, RetrySettings, _TransientStatus, is_transient

FAST = RetrySettings(budget=2.0, initial_backoff=0.001, max_backoff=0.005)


class FakeResponse:
    def __init__(self, status: int, data: bytes) -> None:
        self.status = status
        self.data = data

    def read(self) -> bytes:
        return self.data


class FakeApi:
    """Answers in order: an exception to raise or (status, JSON body)."""

    def __init__(self, *answers: BaseException | tuple[int, Any]) -> None:
        self.answers = list(answers)
        self.sent: list[tuple[str, str, dict[str, str], Any]] = []

    def param_serialize(self, method: str, path: str, **kwargs: Any) -> tuple[Any, ...]:
        return (method, path, kwargs["header_params"], kwargs["body"])

    def call_api(self, method: str, path: str, headers: dict[str, str], body: Any, **_: Any) -> FakeResponse:
        self.sent.append((method, path, headers, body))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        status, payload = answer
        return FakeResponse(status, orjson.dumps(payload))

    def close(self) -> None:
        return None


TRANSIENT_CASES = [
    ("connection-refused", ConnectionRefusedError(), True),
    ("max-retries", urllib3.exceptions.MaxRetryError(None, "/api", reason=None), True),  # type: ignore[arg-type]
    ("connection-reset", urllib3.exceptions.ProtocolError("Connection aborted."), True),
    ("timeout", TimeoutError(), True),
    ("tls-cut", ApiException(status=0, reason="SSLError"), True),
    ("http-503", ApiException(status=503), True),
    ("http-429", _TransientStatus(429, b""), True),
    ("http-403", ApiException(status=403), False),
    ("value-error", ValueError("bug"), False),
]


@pytest.mark.parametrize(
    ("exc", "want"), [c[1:] for c in TRANSIENT_CASES], ids=[c[0] for c in TRANSIENT_CASES]
)
def test_is_transient(exc: BaseException, want: bool) -> None:
    assert is_transient(exc) is want


RECOVERY_CASES = [
    ("refused-twice", (ConnectionRefusedError(), ConnectionRefusedError())),
    ("server-restarting", (urllib3.exceptions.ProtocolError("reset"), (503, {"message": "starting"}))),
    ("throttled", ((429, {"message": "slow down"}),)),
]


@pytest.mark.parametrize("failures", [c[1] for c in RECOVERY_CASES], ids=[c[0] for c in RECOVERY_CASES])
async def test_retries_until_the_server_answers(failures: tuple[Any, ...]) -> None:
    api = FakeApi(*failures, (200, {"kind": "ConfigMap"}))
    rest = KubeRest(api, FAST)  # type: ignore[arg-type]
    assert await rest.request("GET", "/api/v1/namespaces/x/configmaps/y") == {"kind": "ConfigMap"}
    assert len(api.sent) == len(failures) + 1


async def test_gives_up_after_the_budget() -> None:
    api = FakeApi(ConnectionRefusedError("refused"))
    rest = KubeRest(api, RetrySettings(budget=0.05, initial_backoff=0.001, max_backoff=0.01))  # type: ignore[arg-type]
    with pytest.raises(ClusterUnavailableError, match="GET /api/v1: the API server did not answer"):
        await rest.request("GET", "/api/v1")
    assert len(api.sent) > 1


ERROR_CASES = [
    ("not-found", 404, NotFoundError, 'configmaps "y" not found'),
    ("conflict", 409, ConflictError, 'configmaps "y" not found'),
    ("invalid", 422, ClusterError, 'configmaps "y" not found (HTTP 422 Invalid)'),
]


@pytest.mark.parametrize(
    ("code", "error", "text"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES]
)
async def test_errors_are_not_retried_and_keep_the_message(
    code: int, error: type[Exception], text: str
) -> None:
    reason = {404: "NotFound", 409: "Conflict", 422: "Invalid"}[code]
    api = FakeApi((code, {"kind": "Status", "message": 'configmaps "y" not found', "reason": reason}))
    rest = KubeRest(api, FAST)  # type: ignore[arg-type]
    with pytest.raises(error) as caught:
        await rest.request("GET", "/api/v1/namespaces/x/configmaps/y")
    assert str(caught.value) == text
    assert len(api.sent) == 1
    if code == 422:
        assert isinstance(caught.value, ClusterError) and caught.value.status == 422


async def test_server_side_apply_sends_json_bytes() -> None:
    api = FakeApi((200, {}))
    rest = KubeRest(api, FAST)  # type: ignore[arg-type]
    await rest.request("PATCH", "/api/v1/x", body={"a": 1}, content_type=APPLY_PATCH)
    (_, _, headers, body) = api.sent[0]
    assert headers["Content-Type"] == APPLY_PATCH
    assert body == b'{"a":1}'
