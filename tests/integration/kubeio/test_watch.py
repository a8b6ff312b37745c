"""``kubeio.watch.follow`` against a real kube-apiserver: a list, then every change, resumed
when the server ends the watch stream (it does so every ``timeoutSeconds``). The 410 Gone path,
which a fresh etcd cannot be made to produce on demand, is unit-tested."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from kubeio import watch
from kubeio.rest import MERGE_PATCH as MERGE
from kubeio.rest import KubeRest
from localinfra import kube

pytestmark = pytest.mark.integration


def configmap(namespace: str, name: str, value: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace}, "data": {"v": value}}


async def until(check: Any, timeout: float = 20) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            pytest.fail(f"not seen within {timeout}s")
        await asyncio.sleep(0.05)


async def test_follow_lists_then_sees_each_change_across_stream_ends(hub: kube.Cluster) -> None:
    rest = KubeRest.from_kubeconfig(hub.kubeconfig)
    namespace = f"watch-{uuid.uuid4().hex[:6]}"
    await rest.request("POST", "/api/v1/namespaces", body={"metadata": {"name": namespace}})
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    await rest.request("POST", path, body=configmap(namespace, "before", "0"))
    lists: list[set[str]] = []
    seen: list[tuple[str, str, str]] = []

    def listed(items: Sequence[dict[str, Any]]) -> None:
        lists.append({i["metadata"]["name"] for i in items})

    def changed(kind: str, obj: dict[str, Any]) -> None:
        seen.append((kind, obj["metadata"]["name"], (obj.get("data") or {}).get("v", "")))

    # The server ends each watch after a second: follow must resume without a new list.
    task = asyncio.create_task(watch.follow(rest, path, listed, changed, timeout_seconds=1))
    try:
        await until(lambda: bool(lists))
        assert "before" in lists[0]
        await rest.request("POST", path, body=configmap(namespace, "cm", "1"))
        await asyncio.sleep(2.5)  # at least two stream ends in between
        await rest.request("PATCH", f"{path}/cm", body={"data": {"v": "2"}}, content_type=MERGE)
        await rest.request("DELETE", f"{path}/cm")
        await until(lambda: ("DELETED", "cm", "2") in seen)
        assert [s for s in seen if s[1] == "cm"] == [
            ("ADDED", "cm", "1"),
            ("MODIFIED", "cm", "2"),
            ("DELETED", "cm", "2"),
        ]
        assert len(lists) == 1, "a stream the server ended is resumed, not listed again"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await rest.request("DELETE", f"/api/v1/namespaces/{namespace}")
        await rest.close()
