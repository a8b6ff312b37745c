"""The hub's answers for token callers: a TokenReview names the user, a SubjectAccessReview says
what they may do. Each answer is cached briefly (`ttl_cache`)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from kubeio.errors import KubeError
from kubeio.rest import KubeRest
from maestro.server.callers import User
from maestro.server.permissions import API_GROUP, Verb
from maestro.server.ttl_cache import TTLCache

log = logging.getLogger(__name__)


class HubUnavailable(Exception):
    """The hub's API server could not answer a review: the caller should retry."""


class HubReviews:
    """TokenReview and SubjectAccessReview on the hub, each answer cached briefly.

    The server's hub credentials need ``create`` on ``tokenreviews`` and ``subjectaccessreviews``
    (the built-in ClusterRole ``system:auth-delegator``).
    """

    def __init__(
        self, rest: KubeRest, *, audiences: Sequence[str] = (), ttl: float = 10.0, size: int = 4096
    ) -> None:
        self.rest = rest
        self._audiences = list(audiences)
        self._tokens: TTLCache[bytes, User | str] = TTLCache(ttl, size)
        self._decisions: TTLCache[tuple[object, ...], bool] = TTLCache(ttl, size)
        # Reviews under way: callers asking the same question at once share one review.
        self._asking: dict[object, asyncio.Future[Any]] = {}

    async def close(self) -> None:
        await self.rest.close()

    async def user(self, token: str) -> User | str:
        """The token's user, or why the hub refused the token."""
        key = hashlib.sha256(token.encode()).digest()  # tokens are never kept as keys in memory
        cached = self._tokens.get(key)
        if cached is not None:
            return cached
        answer: User | str = await self._once(("token", key), lambda: self._review_token(key, token))
        return answer

    async def _review_token(self, key: bytes, token: str) -> User | str:
        spec: dict[str, Any] = {"token": token}
        if self._audiences:
            spec["audiences"] = self._audiences
        reply = await self._create(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec},
        )
        status = reply.get("status") or {}
        answer: User | str
        if not status.get("authenticated"):
            error = status.get("error")
            answer = "the hub did not accept the token" + (f": {error}" if error else "")
        else:
            found = status.get("user") or {}
            extra = tuple(sorted((k, tuple(v or ())) for k, v in (found.get("extra") or {}).items()))
            answer = User(
                str(found.get("username") or ""),
                str(found.get("uid") or ""),
                tuple(found.get("groups") or ()),
                extra,
            )
        self._tokens.put(key, answer)
        return answer

    async def allows(self, user: User, verb: Verb, resource: str, name: str) -> bool:
        key = (user, verb, resource, name)
        cached = self._decisions.get(key)
        if cached is not None:
            return cached
        allowed: bool = await self._once(key, lambda: self._review_access(key))
        return allowed

    async def _review_access(self, key: tuple[User, Verb, str, str]) -> bool:
        user, verb, resource, name = key
        spec: dict[str, Any] = {
            "user": user.name,
            "groups": list(user.groups),
            "resourceAttributes": {"group": API_GROUP, "resource": resource, "name": name, "verb": str(verb)},
        }
        if user.uid:
            spec["uid"] = user.uid
        if user.extra:
            spec["extra"] = {k: list(v) for k, v in user.extra}
        reply = await self._create(
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec},
        )
        allowed = bool((reply.get("status") or {}).get("allowed"))
        self._decisions.put(key, allowed)
        return allowed

    async def _once(self, key: object, review: Callable[[], Awaitable[Any]]) -> Any:
        pending = self._asking.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        task = asyncio.ensure_future(review())
        self._asking[key] = task
        task.add_done_callback(lambda _: self._asking.pop(key, None))
        return await asyncio.shield(task)

    async def _create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            return await self.rest.request("POST", path, body=body)
        except KubeError as exc:
            log.error("review on the hub failed: %s", exc)
            raise HubUnavailable(
                f"the server could not ask the hub's API server ({exc}); its hub credentials need "
                "system:auth-delegator"
            ) from exc
