"""The cluster's registration with Maestro: its consumer, created once and deleted last but the
cluster, after the works Maestro still holds for it are gone."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from maestro import client_errors
from maestro.api import queries
from maestro.client import MaestroClient


async def register(maestro: MaestroClient, name: str, labels: Mapping[str, str]) -> tuple[bool, str]:
    try:
        await maestro.get_consumer(name)
    except client_errors.NotFound:
        await maestro.create_consumer(name, dict(labels))
    return True, "registered with Maestro"


async def works_left(maestro: MaestroClient, name: str) -> int:
    """How many works Maestro still holds for the cluster."""
    try:
        records, _ = await maestro.list(queries.ResourceFilter(consumer=name))
    except client_errors.NotFound:
        return 0
    return len(records)


async def unregister(maestro: MaestroClient, name: str) -> None:
    with contextlib.suppress(client_errors.NotFound):  # never registered, or deleted already
        await maestro.delete_consumer(name)
