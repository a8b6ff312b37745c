"""Which resource serves a kind: the cluster's discovery, one group/version at a time, cached.

Called by the agent's `KubeBackend.resolve` for every manifest and by the provisioner's applier.
A group/version is fetched the first time a manifest names it and again whenever a kind is
missing from the cached answer — a CRD in the same bundle (or installed since) then resolves
without a restart. A group/version the cluster does not serve at all is an `UnknownKindError`,
which fails only the manifests using it.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubeio.errors import NotFoundError, UnknownKindError
from kubeio.rest import KubeRest


@dataclass(frozen=True, slots=True)
class ResourceType:
    """How the API serves a kind: its resource (plural) name and whether objects live in namespaces."""

    resource: str
    namespaced: bool


class Discovery:
    def __init__(self, rest: KubeRest) -> None:
        self._rest = rest
        self._kinds: dict[str, dict[str, ResourceType]] = {}

    async def resolve(self, group: str, version: str, kind: str) -> ResourceType:
        api_version = f"{group}/{version}" if group else version
        kinds = self._kinds.get(api_version)
        if kinds is None or kind not in kinds:
            kinds = await self._fetch(api_version)
        found = kinds.get(kind)
        if found is None:
            if not kinds:
                raise UnknownKindError(f"the cluster does not serve apiVersion {api_version}")
            raise UnknownKindError(f"the cluster serves no kind {kind} in apiVersion {api_version}")
        return found

    def forget(self) -> None:
        self._kinds.clear()

    async def _fetch(self, api_version: str) -> dict[str, ResourceType]:
        path = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
        try:
            listing = await self._rest.request("GET", path)
        except NotFoundError:
            listing = {}
        kinds: dict[str, ResourceType] = {}
        for entry in listing.get("resources") or ():
            name = str(entry.get("name") or "")
            if not name or "/" in name:
                continue  # subresources (deployments/scale, pods/status) are not what we write
            kinds.setdefault(str(entry.get("kind")), ResourceType(name, bool(entry.get("namespaced"))))
        self._kinds[api_version] = kinds
        return kinds
