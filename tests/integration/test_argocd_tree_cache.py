"""The hub controllers' resource trees in a real Redis, as argocd-server finds them.

Cases: trees offered for a mirror in Argo CD's namespace and one in another are written under
Argo CD's keys (name, ``<namespace>_<name>``) as gzipped JSON, over TLS with a client certificate
and the password from its file; a newer offer replaces a tree; a forgotten mirror's tree is
deleted. (argocd-server reading them through its API and CLI: ``tests/e2e/test_hub_argocd.py``.)
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from controllers import argocd_cache
from controllers.status import tree
from localinfra import pki, redis
from localinfra.environment import Environment
from trust.identity import Identity

pytestmark = pytest.mark.integration

CONFIGMAP = {"version": "v1", "kind": "ConfigMap", "namespace": "default", "name": "configmap1"}


@pytest.fixture
async def cache(infra_env: Environment) -> AsyncIterator[argocd_cache.TreeCacheSettings]:
    env = infra_env.child(f"tree-cache-{uuid.uuid4().hex[:6]}")
    server = await asyncio.to_thread(
        redis.start, env, "redis", Identity.service("tree-cache-redis"), identities=infra_env
    )
    client = pki.identity_files(infra_env, Identity.source("tree-cache-test"))
    try:
        yield argocd_cache.TreeCacheSettings(server.address, server.credentials / "auth", client)
    finally:
        await asyncio.to_thread(env.down)


async def until(what: str, check: Callable[[], Awaitable[bool]], tries: int = 300) -> None:
    for _ in range(tries):
        if await check():
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"not seen within {tries / 10:.0f}s: {what}")


async def test_trees_are_written_and_deleted_under_argo_cds_keys(
    cache: argocd_cache.TreeCacheSettings,
) -> None:
    writer = argocd_cache.TreeWriter(argocd_cache.connect(cache), "argocd")
    reader = argocd_cache.connect(cache)
    running = asyncio.create_task(writer.run())

    async def read(key: str) -> dict[str, Any]:
        data = await reader.get(key)
        assert isinstance(data, bytes), data
        return tree.decode(data)

    try:
        writer.offer("argocd", "c1-configmap1", "c1", [CONFIGMAP])
        writer.offer("team-a", "c2-configmap1", "c2", [])
        own, other = tree.tree_key("c1-configmap1"), tree.tree_key("team-a_c2-configmap1")

        async def both_written() -> bool:
            return bool(await reader.exists(own, other) == 2)

        await until("both trees written", both_written)
        nodes = (await read(own))["nodes"]
        assert [(n["kind"], n["name"]) for n in nodes] == [("ConfigMap", "configmap1")]
        assert (await read(other)) == {"nodes": []}

        writer.offer("argocd", "c1-configmap1", "c1", [CONFIGMAP, {**CONFIGMAP, "name": "configmap2"}])

        async def replaced() -> bool:
            return len((await read(own))["nodes"]) == 2

        await until("the tree replaced", replaced)

        writer.forget("argocd", "c1-configmap1")

        async def deleted() -> bool:
            return bool(await reader.exists(own) == 0)

        await until("the tree deleted", deleted)
        assert await reader.exists(other) == 1
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        await reader.aclose()
