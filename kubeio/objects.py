"""Any Kubernetes object as a dict: apply, read, delete and status writes by apiVersion/kind.

The provisioner applies what a composition renders (Namespaces, CRDs, Argo CD's own objects,
Deployments ...) without knowing the kinds in advance: the path of each comes from discovery.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from kubeio.discovery import Discovery
from kubeio.errors import ClusterUnavailableError, ConflictError, NotFoundError, UnknownKindError
from kubeio.rest import APPLY_PATCH, MERGE_PATCH, KubeRest

JsonObject = dict[str, Any]

CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def object_path(group: str, version: str, resource: str, namespace: str | None, name: str) -> str:
    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    if namespace:
        base += f"/namespaces/{quote(namespace, safe='')}"
    return f"{base}/{resource}/{quote(name, safe='')}"


def describe(obj: Mapping[str, Any]) -> str:
    """``Kind namespace/name`` for messages."""
    meta = obj.get("metadata") or {}
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind')} {where}{meta.get('name')}"


class Objects:
    def __init__(self, rest: KubeRest, *, kind_timeout: float = 60.0) -> None:
        self.rest = rest
        self.discovery = Discovery(rest)
        # how long a kind may take to be served after its CRD was applied
        self.kind_timeout = kind_timeout

    async def path(self, obj: Mapping[str, Any]) -> str:
        api_version = str(obj.get("apiVersion") or "")
        group, _, version = api_version.rpartition("/")
        meta = obj.get("metadata") or {}
        deadline = asyncio.get_running_loop().time() + self.kind_timeout
        while True:
            try:
                served = await self.discovery.resolve(group, version, str(obj.get("kind")))
                break
            except UnknownKindError:
                # A CRD applied a moment ago is not served yet; anything else stays unknown.
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.5)
        namespace = meta.get("namespace") if served.namespaced else None
        if served.namespaced and not namespace:
            namespace = "default"
        return object_path(group, version, served.resource, namespace, str(meta.get("name")))

    async def apply(self, obj: Mapping[str, Any], *, field_manager: str, force: bool = True) -> JsonObject:
        """Server-side apply: create or update in one call; ``force`` takes over fields others own."""
        query = [("fieldManager", field_manager), ("force", "true" if force else "false")]
        return await self.rest.request(
            "PATCH", await self.path(obj), query=query, body=dict(obj), content_type=APPLY_PATCH
        )

    async def get(self, obj: Mapping[str, Any]) -> JsonObject | None:
        try:
            return await self.rest.request("GET", await self.path(obj))
        except (NotFoundError, UnknownKindError):
            return None

    async def delete(self, obj: Mapping[str, Any], *, propagation: str = "Background") -> bool:
        """``False`` when it was already gone (or its kind is no longer served)."""
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        try:
            await self.rest.request("DELETE", await self.path(obj), body=body)
        except (NotFoundError, UnknownKindError):
            return False
        except ConflictError:
            return True  # being deleted already
        return True

    async def patch_status(self, obj: Mapping[str, Any], patch: Mapping[str, Any]) -> JsonObject:
        """A merge patch of the ``status`` subresource."""
        return await self.rest.request(
            "PATCH", await self.path(obj) + "/status", body=dict(patch), content_type=MERGE_PATCH
        )

    async def wait_established(self, crd_name: str, timeout: float = 60.0) -> None:
        await wait_established(self.rest, crd_name, timeout)


async def wait_established(rest: KubeRest, crd_name: str, timeout: float = 60.0) -> None:
    """Until the API server serves a CRD it was just given (its ``Established`` condition)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        crd = await rest.request("GET", f"{CRD_PATH}/{crd_name}")
        conditions = (crd.get("status") or {}).get("conditions") or ()
        if any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions):
            return
        if loop.time() > deadline:
            raise ClusterUnavailableError(f"CRD {crd_name} not Established after {timeout:.0f}s")
        await asyncio.sleep(0.2)
