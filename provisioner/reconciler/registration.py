"""The cluster's registration with Maestro: its consumer, created once and deleted last but the
cluster, after the works Maestro still holds for it are gone."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from maestro import client_errors
from maestro.api import bundles, queries
from maestro.client import MaestroClient


async def register(maestro: MaestroClient, name: str, labels: Mapping[str, str]) -> tuple[bool, str]:
    try:
        await maestro.get_consumer(name)
    except client_errors.NotFound:
        await maestro.create_consumer(name, dict(labels))
    return True, "registered with Maestro"


async def works_left(maestro: MaestroClient, name: str) -> int:
    """How many works Maestro still holds for the cluster."""
    return len(await works(maestro, name))


async def works(maestro: MaestroClient, name: str) -> list[bundles.BundleRecord]:
    """The works Maestro still holds for the cluster (those being deleted too), without manifests."""
    try:
        records, _ = await maestro.list(queries.ResourceFilter(consumer=name), with_spec=False)
    except client_errors.NotFound:
        return []
    return records


async def withdraw(maestro: MaestroClient, records: list[bundles.BundleRecord]) -> None:
    """Ask Maestro to delete each work not being deleted yet. Each delete is sent as the work's own
    source (Maestro lets only its owner or an admin delete a work; the provisioner is an admin), so
    the work's source sees its deletion as it would its own."""
    for record in records:
        bundle = record.bundle
        if bundle.deleted_at is not None:
            continue
        request = bundles.SpecRequest(bundles.SpecAction.DELETE, bundle.id, bundle.consumer, bundle.source, 0)
        with contextlib.suppress(client_errors.NotFound):  # gone in between
            await maestro.publish(request)


async def unregister(maestro: MaestroClient, name: str) -> None:
    with contextlib.suppress(client_errors.NotFound):  # never registered, or deleted already
        await maestro.delete_consumer(name)
