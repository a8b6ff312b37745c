"""Raw JSON requests to a kube-apiserver over one pooled aiohttp session, retried while it is away.

Used by the agent's backend, the hub controllers and the provisioner. Everything stays on the event
loop (no thread per request): at fleet scale the controllers make hundreds of writes a second and
a thread hop plus the ``kubernetes`` client's per-call overhead was their bottleneck. Connection
failures, timeouts, 429 and 5xx are retried with jittered exponential backoff (tenacity) for
``RetrySettings.budget`` seconds — long enough to ride out an API server restart — and then raised
as ``ClusterUnavailableError``; other failures map to ``NotFoundError`` (404), ``ConflictError``
(409) or ``ClusterError``, carrying the server's own message. A 401 has the credentials loaded
again (a rotated ServiceAccount token, an exec plugin's expired credential) and the request sent
once more with them when they changed: long-running processes outlive their tokens.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_delay,
    wait_exponential_jitter,
)

from kubeio import credentials
from kubeio.errors import ClusterError, ClusterUnavailableError, ConflictError, NotFoundError

JsonObject = dict[str, Any]

log = logging.getLogger(__name__)

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
UNAUTHORIZED = 401
#: replies that do not show the server doing its work for us: our credentials refused, load shed
_NOT_ANSWERED = frozenset({UNAUTHORIZED, 403, 429})
#: how long a session replaced by fresh credentials stays open for the requests still using it
_RETIRED_SESSION_SECONDS = 60.0
#: a 500 that is the request's own fault: server-side apply answers it when the applied object has
#: a field the resource's schema does not declare, and the same request always gets it again
_APPLY_SCHEMA_ERROR = "failed to create typed patch object"
JSON = "application/json"
# Lists of objects' metadata alone (what metadata-only informers ask for): the API server sends no
# spec or status, which for big objects at fleet scale are most of a list's bytes.
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
#: a reply holding the object's metadata alone (for a write whose reply only says it landed)
METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
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
    # Requests in flight at once to this server; more wait for a connection.
    max_connections: int = 32


class TransientStatus(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {_message(body) or 'no message'}")
        self.status = status


def is_transient(exc: BaseException) -> bool:
    """Whether retrying may help: the server is unreachable, restarting or shedding load."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return False  # a wrong CA or certificate stays wrong; a handshake cut by a restart does not
    return isinstance(
        exc,
        TransientStatus | aiohttp.ClientConnectionError | aiohttp.ClientPayloadError | OSError | TimeoutError,
    )


class KubeRest:
    """One API server. Create it anywhere; its HTTP session opens on the first request, in the loop
    that makes it, and ``close`` must be awaited in that same loop."""

    def __init__(self, creds: credentials.Credentials, retry: RetrySettings | None = None) -> None:
        self.creds = creds
        self.retry = retry or RetrySettings()
        self._session: aiohttp.ClientSession | None = None
        self._reloading = asyncio.Lock()
        #: sessions that carried credentials since replaced, open for the requests still on them
        self._retired: set[aiohttp.ClientSession] = set()
        #: how many times the server refused our credentials and fresh ones were loaded
        self.reloads = 0
        #: when (``time.monotonic``) the server last answered a request of ours (None: never): any
        #: reply but a refusal of our credentials, a 429 or a 5xx
        self.answered_at: float | None = None

    @classmethod
    def from_kubeconfig(
        cls, kubeconfig: str | Path | None, *, context: str | None = None, retry: RetrySettings | None = None
    ) -> KubeRest:
        return cls(credentials.load(kubeconfig, context=context), retry)

    @property
    def server(self) -> str:
        return self.creds.server

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"Accept": JSON}
            if self.creds.authorization:
                headers["Authorization"] = self.creds.authorization
            self._session = aiohttp.ClientSession(
                base_url=self.creds.server,
                headers=headers,
                connector=aiohttp.TCPConnector(
                    ssl=self.creds.ssl if self.creds.ssl is not None else False,
                    limit=self.retry.max_connections,
                ),
                timeout=aiohttp.ClientTimeout(
                    sock_connect=self.retry.connect_timeout, sock_read=self.retry.read_timeout
                ),
                json_serialize=lambda o: orjson.dumps(o).decode(),
            )
        return self._session

    async def close(self) -> None:
        for retired in [*self._retired, self._session]:
            if retired is not None:
                await retired.close()
        self._retired.clear()
        self._session = None

    def _retire(self, session: aiohttp.ClientSession) -> None:
        """Close ``session`` once the requests still using it have had time to end."""
        self._retired.add(session)

        async def close() -> None:
            self._retired.discard(session)
            await session.close()

        asyncio.get_running_loop().call_later(
            _RETIRED_SESSION_SECONDS, lambda: asyncio.ensure_future(close())
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str = JSON,
        accept: str = JSON,
    ) -> JsonObject:
        """The response body as a dict (a `Status` for some deletes); raises on any non-2xx."""
        data = body if body is None or isinstance(body, bytes) else orjson.dumps(body)
        used = self.creds
        status, reply = await self._retried(method, path, query, data, content_type, accept)
        if status == UNAUTHORIZED and await self._reloaded(used):
            status, reply = await self._retried(method, path, query, data, content_type, accept)
        if 200 <= status < 300:
            parsed: JsonObject = orjson.loads(reply) if reply else {}
            return parsed
        raise _refusal(status, reply)

    async def _retried(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        data: bytes | None,
        content_type: str,
        accept: str,
    ) -> tuple[int, bytes]:
        """One request, sent again while the server is away or shedding load."""
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
                    status, reply = await self._send(method, path, query, data, content_type, accept)
                    if status in TRANSIENT_STATUSES and not _refused_apply(status, reply):
                        raise TransientStatus(status, reply)
        except Exception as exc:
            if is_transient(exc):
                raise ClusterUnavailableError(
                    f"{method} {path}: the API server did not answer within {self.retry.budget:.0f}s: {exc}"
                ) from exc
            raise
        return status, reply

    async def _reloaded(self, used: credentials.Credentials) -> bool:
        """After the server refused ``used``: whether the credentials to send now differ (loaded
        again here, or by a request refused at the same time). The session that carried the old
        ones is closed once the requests still on it are done."""
        async with self._reloading:
            if self.creds is not used:
                return True
            if used.reload is None:
                return False
            fresh = await asyncio.to_thread(used.reload)
            if fresh.authorization == used.authorization:
                return False
            self.creds = fresh
            self.reloads += 1
            retired, self._session = self._session, None
        log.info("the API server refused our credentials; loaded them again (%d reloads)", self.reloads)
        if retired is not None:
            self._retire(retired)
        return True

    async def readyz(self) -> str | None:
        """Ask the server's ``/readyz`` once, not retried (a probe asks again): why it is not
        ready, None when it is. Raises when it cannot be reached."""
        status, reply = await self._send("GET", "/readyz", (), None, JSON, JSON)
        if status == 200:
            return None
        return f"HTTP {status}: {reply[:300].decode(errors='replace').strip() or 'no message'}"

    async def list_all(
        self, path: str, *, query: Sequence[tuple[str, str]] = (), page: int = 500, accept: str = JSON
    ) -> tuple[list[JsonObject], str]:
        """Every item of a collection, page by page (a fleet's worth does not fit one reply), and
        the list's resourceVersion (where a watch that must miss nothing starts). With ``accept``
        ``METADATA_LIST`` each item is the object's metadata alone."""
        items: list[JsonObject] = []
        token = ""
        while True:
            paged = [*query, ("limit", str(page))]
            if token:
                paged.append(("continue", token))
            reply = await self.request("GET", path, query=paged, accept=accept)
            items.extend(reply.get("items") or ())
            meta = reply.get("metadata") or {}
            token = str(meta.get("continue") or "")
            if not token:
                return items, str(meta.get("resourceVersion") or "")

    async def stream(
        self, path: str, *, query: Sequence[tuple[str, str]] = (), accept: str = JSON
    ) -> AsyncIterator[JsonObject]:
        """The JSON lines of a streaming GET (a watch) as they arrive. Not retried: a watcher that
        loses its stream lists again. The server ends the stream (``timeoutSeconds``), so no read
        timeout applies; a 429 or 5xx raises ``ClusterUnavailableError``. With ``accept``
        ``METADATA`` each event's object is its metadata alone."""
        timeout = aiohttp.ClientTimeout(sock_connect=self.retry.connect_timeout)
        used = self.creds
        headers = {"Accept": accept}
        async with self._http().get(path, params=list(query), timeout=timeout, headers=headers) as resp:
            if resp.status == UNAUTHORIZED and await self._reloaded(used):
                raise ClusterUnavailableError(
                    f"GET {path}: credentials refused and loaded again; watch again"
                )
            self._answered(resp.status)
            if resp.status != 200:
                reply = await resp.read()
                if resp.status in TRANSIENT_STATUSES:
                    raise ClusterUnavailableError(f"GET {path}: HTTP {resp.status}: {_message(reply)}")
                raise _refusal(resp.status, reply)
            # Lines are read by hand: one event may be larger than aiohttp's line limit (64 KiB).
            pending = b""
            async for chunk in resp.content.iter_any():
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield orjson.loads(line)

    async def _send(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        data: bytes | None,
        content_type: str,
        accept: str,
    ) -> tuple[int, bytes]:
        headers = {"Content-Type": content_type} if data is not None else {}
        if accept != JSON:
            headers["Accept"] = accept
        async with self._http().request(method, path, params=list(query), data=data, headers=headers) as resp:
            reply = await resp.read()
        self._answered(resp.status)
        return resp.status, reply

    def _answered(self, status: int) -> None:
        if status < 500 and status not in _NOT_ANSWERED:
            self.answered_at = time.monotonic()


def _refusal(status: int, reply: bytes) -> ClusterError | ConflictError:
    message = _message(reply) or f"HTTP {status}"
    reason = _reason(reply)
    if status == 404:
        return NotFoundError(message, status=status, reason=reason)
    if status == 409:
        return ConflictError(message)
    return ClusterError(
        f"{message} (HTTP {status}{f' {reason}' if reason else ''})", status=status, reason=reason
    )


def _refused_apply(status: int, reply: bytes) -> bool:
    return status == 500 and _message(reply).startswith(_APPLY_SCHEMA_ERROR)


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    log.info("kube-apiserver request failed (attempt %d), retrying: %s", state.attempt_number, exc)


def _parsed(data: bytes) -> dict[str, Any]:
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _message(data: bytes) -> str:
    if not data:
        return ""
    parsed = _parsed(data)
    if not parsed:
        return data[:300].decode(errors="replace").strip()
    return str(parsed.get("message") or "")


def _reason(data: bytes) -> str:
    return str(_parsed(data).get("reason") or "")
