"""The propagation's cache of the hub mirrors against a real kube-apiserver with Argo CD's CRDs: a
metadata-only list and watch of the labelled Applications shows each mirror's owner and hash,
follows changes and deletions, and leaves other Applications out."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import pytest

from controllers import contract
from controllers.hub import HubClient
from controllers.propagation.mirror_cache import MirrorCache
from kubeio.rest import MERGE_PATCH
from localinfra import kube
from tests.integration import probing

pytestmark = pytest.mark.integration


def application(namespace: str, name: str, *, appset: str | None, mirror_hash: str = "h1") -> dict[str, Any]:
    meta: dict[str, Any] = {"namespace": namespace, "name": name}
    if appset is not None:
        meta["labels"] = {contract.LABEL_APPSET_NAME: appset}
        meta["annotations"] = {
            contract.ANNOTATION_APPSET: f"{namespace}/{appset}",
            contract.ANNOTATION_MIRROR_HASH: mirror_hash,
        }
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": meta,
        "spec": {
            "project": "default",
            "source": {"repoURL": "https://example.com/repo.git", "path": "app"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "app"},
        },
    }


async def test_the_cache_follows_the_hubs_mirrors(hub: kube.Cluster) -> None:
    client = HubClient(hub.kubeconfig)
    namespace = f"mirrors-{uuid.uuid4().hex[:6]}"
    await client.rest.request("POST", "/api/v1/namespaces", body={"metadata": {"name": namespace}})
    manager = "fleetplane-propagation"
    await client.create_application(application(namespace, "c1-web", appset="web"), field_manager=manager)
    await client.create_application(application(namespace, "own", appset=None), field_manager=manager)
    cache = MirrorCache(client)
    task = asyncio.create_task(cache.run())

    async def shown(expected: dict[str, str]) -> bool:
        listed = await cache.mirrors(namespace, "web")
        return {
            m["metadata"]["name"]: m["metadata"]["annotations"][contract.ANNOTATION_MIRROR_HASH]
            for m in listed
        } == expected

    try:
        assert await shown({"c1-web": "h1"}), "listed; the unlabelled Application left out"
        await client.create_application(application(namespace, "c2-web", appset="web"), field_manager=manager)
        await probing.eventually(lambda: shown({"c1-web": "h1", "c2-web": "h1"}), "c2-web created")
        await client.rest.request(
            "PATCH",
            f"/apis/argoproj.io/v1alpha1/namespaces/{namespace}/applications/c1-web",
            body={"metadata": {"annotations": {contract.ANNOTATION_MIRROR_HASH: "h2"}}},
            content_type=MERGE_PATCH,
        )
        await probing.eventually(lambda: shown({"c1-web": "h2", "c2-web": "h1"}), "c1-web changed")
        await client.replace_application_status(namespace, "c2-web", {"sync": {"status": "Synced"}})
        await client.delete_application(namespace, "c1-web")
        await probing.eventually(lambda: shown({"c2-web": "h1"}), "c1-web deleted")
        assert len(cache) == 1
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await client.rest.request("DELETE", f"/api/v1/namespaces/{namespace}")
        await client.close()
