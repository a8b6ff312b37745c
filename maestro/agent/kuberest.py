"""Raw JSON requests to a kube-apiserver, off the event loop, retried while the server is away.

Used by `discovery` and `kube.KubeBackend`. It goes through the `kubernetes` client's `ApiClient`
(kubeconfig, TLS, auth, connection pool) but skips its typed models: the agent handles arbitrary
kinds as plain dicts. Every blocking call runs in `asyncio.to_thread`. Connection failures,
timeouts, 429 and 5xx are retried with jittered exponential backoff (tenacity) for
`RetrySettings.budget` seconds — long enough to ride out an API server restart — and then raised
as `ClusterUnavailableError`; other failures map to `NotFoundError` (404), `ConflictError` (409)
or `ClusterError`, carrying the server's own message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_delay,
    wait_exponential_jitter,
)

from maestro.agent.errors import ClusterError, ClusterUnavailableError, ConflictError, NotFoundError

JsonObject = dict[str, Any]

log = logging.getLogger(__name__)

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
JSON = "application/json"
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


@dataclass(frozen=True, slots=True)
class RetrySettings:
    # Seconds one request keeps retrying a server that is down or overloaded before giving up.
    budget: float = 60.0
    initial_backoff: float = 0.1
    max_backoff: float = 5.0
    connect_timeout: float = 5.0
    read_timeout: float = 30.0


class _TransientStatus(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {_message(body) or 'no message'}")
        self.status = status


def is_transient(exc: BaseException) -> bool:
    """Whether retrying may help: the server is unreachable, restarting or shedding load."""
    if isinstance(exc, _TransientStatus):
        return True
    if isinstance(exc, ApiException):
        # status 0: the client failed before any HTTP status (TLS handshake cut by a restart).
        return exc.status == 0 or exc.status in TRANSIENT_STATUSES
    return isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError)


def api_client(kubeconfig: str | Path | None = None, *, context: str | None = None) -> client.ApiClient:
    """An ApiClient for a kubeconfig (or the in-cluster service account when None).

    urllib3's own retries are off: tenacity retries with backoff instead, and a stale pooled
    connection after a server restart then surfaces at once rather than after silent retries.
    """
    configuration = client.Configuration()
    if kubeconfig is None:
        config.load_incluster_config(client_configuration=configuration)
    else:
        config.load_kube_config(
            config_file=str(kubeconfig), context=context, client_configuration=configuration
        )
    configuration.retries = False
    return client.ApiClient(configuration)


class KubeRest:
    def __init__(self, api: client.ApiClient, retry: RetrySettings | None = None) -> None:
        self.api = api
        self.retry = retry or RetrySettings()

    def close(self) -> None:
        self.api.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str = JSON,
    ) -> JsonObject:
        """The response body as a dict (a `Status` for some deletes); raises on any non-2xx."""
        retrying = AsyncRetrying(
            retry=retry_if_exception(is_transient),
            wait=wait_exponential_jitter(initial=self.retry.initial_backoff, max=self.retry.max_backoff),
            stop=stop_after_delay(self.retry.budget),
            before_sleep=_log_retry,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    status, data = await asyncio.to_thread(
                        self._send, method, path, query, body, content_type
                    )
                    if status in TRANSIENT_STATUSES:
                        raise _TransientStatus(status, data)
        except Exception as exc:
            if is_transient(exc):
                raise ClusterUnavailableError(
                    f"{method} {path}: the API server did not answer within {self.retry.budget:.0f}s: {exc}"
                ) from exc
            if isinstance(exc, ApiException):
                raise ClusterError(f"{method} {path}: {exc.reason}", status=exc.status or 0) from exc
            raise
        if 200 <= status < 300:
            parsed: JsonObject = orjson.loads(data) if data else {}
            return parsed
        message = _message(data) or f"HTTP {status}"
        reason = _reason(data)
        if status == 404:
            raise NotFoundError(message, status=status, reason=reason)
        if status == 409:
            raise ConflictError(message)
        raise ClusterError(
            f"{message} (HTTP {status}{f' {reason}' if reason else ''})", status=status, reason=reason
        )

    def _send(
        self, method: str, path: str, query: Sequence[tuple[str, str]], body: Any, content_type: str
    ) -> tuple[int, bytes]:
        headers = {"Accept": JSON, "Content-Type": content_type}
        if content_type == APPLY_PATCH and not isinstance(body, bytes | str):
            body = orjson.dumps(body)  # JSON is YAML; passed as bytes the client sends it untouched
        request = self.api.param_serialize(
            method,
            path,
            query_params=list(query),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(
            *request, _request_timeout=(self.retry.connect_timeout, self.retry.read_timeout)
        )
        data: bytes = response.read() or b""
        return response.status, data


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.info("kube-apiserver request failed (attempt %d), retrying: %s", state.attempt_number, exc)


def _message(data: bytes) -> str:
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return data[:300].decode(errors="replace").strip()
    return str(parsed.get("message") or "") if isinstance(parsed, dict) else ""


def _reason(data: bytes) -> str:
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return ""
    return str(parsed.get("reason") or "") if isinstance(parsed, dict) else ""
