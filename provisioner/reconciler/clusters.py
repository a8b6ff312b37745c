"""Clients of the provisioned clusters, one per cluster, rebuilt when its kubeconfig changes (a
renewed token, a moved endpoint) and closed when the cluster is deleted."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import yaml

from kubeio import credentials, objects
from kubeio.rest import KubeRest


class ClusterClients:
    def __init__(self) -> None:
        #: name -> (the kubeconfig it was built from, "" for one the provider serves; the client)
        self._clients: dict[str, tuple[str, objects.Objects]] = {}

    async def connect(
        self, name: str, kubeconfig: Mapping[str, Any], served: object = None
    ) -> objects.Objects:
        """The cluster's client: ``served`` when its provider serves its API itself, else one built
        from ``kubeconfig`` (and rebuilt when that changes)."""
        if isinstance(served, objects.Objects):
            cached = self._clients.get(name)
            if cached is not None and cached[1] is served:
                return served
            await self.forget(name)
            self._clients[name] = ("", served)
            return served
        digest = yaml.safe_dump(dict(kubeconfig), sort_keys=True)
        cached = self._clients.get(name)
        if cached is not None and cached[0] == digest:
            return cached[1]
        await self.forget(name)
        creds = await asyncio.to_thread(credentials.from_kubeconfig_dict, dict(kubeconfig))
        client = objects.Objects(KubeRest(creds))
        self._clients[name] = (digest, client)
        return client

    def get(self, name: str) -> objects.Objects | None:
        """The cluster's client if this process has reached the cluster."""
        cached = self._clients.get(name)
        return cached[1] if cached is not None else None

    async def forget(self, name: str) -> None:
        cached = self._clients.pop(name, None)
        if cached is not None and cached[0]:
            await cached[1].rest.close()

    async def close(self) -> None:
        for name in list(self._clients):
            await self.forget(name)
