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
        self._clients: dict[str, tuple[str, objects.Objects]] = {}

    async def connect(self, name: str, kubeconfig: Mapping[str, Any]) -> objects.Objects:
        digest = yaml.safe_dump(dict(kubeconfig), sort_keys=True)
        cached = self._clients.get(name)
        if cached is not None and cached[0] == digest:
            return cached[1]
        if cached is not None:
            await cached[1].rest.close()
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
        if cached is not None:
            await cached[1].rest.close()

    async def close(self) -> None:
        for name in list(self._clients):
            await self.forget(name)
