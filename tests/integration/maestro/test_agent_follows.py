"""A running agent follows its consumer when the cluster is deleted and registered again under its
name, against a real server, PostgreSQL, Kafka (its ACLs) and a worker cluster.

Case: the agent applies a work; the work is deleted and so is the consumer (its topics and ACLs go
with it); while the cluster is not registered the agent waits; the
cluster is registered again (a new incarnation, new topics) and its certificate replaced by one of
the new identity, as the provisioner does; the same agent process reads the new topics and applies
a work sent to the new registration, and its status is reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest

from localinfra import kube
from maestro import client_errors
from maestro.agent import service as agent_service
from maestro.client import Credentials, MaestroClient
from maestro.transport.connection import KafkaSettings, tls_dir_files
from tests.integration.maestro.conftest import MaestroUnderTest
from tests.integration.maestro.test_pipeline import bundle_for, eventually, read_value
from trust.identity import Identity

pytestmark = pytest.mark.integration


async def test_an_agent_follows_its_cluster_registered_again(
    maestro_server: MaestroUnderTest,
    source_client: MaestroClient,
    worker_clusters: list[kube.Cluster],
    kafka_bootstrap: str,
) -> None:
    cluster = worker_clusters[0]
    ns = f"follow-{uuid.uuid4().hex[:6]}"
    folder = maestro_server.identities.folder / f"follow-{cluster.name}"
    ca = maestro_server.identities.ca

    def issue(slot: int | None) -> None:
        assert slot is not None
        ca.issue(Identity.cluster(cluster.name, slot)).write(folder, "tls", ca.cert_pem)

    first = await source_client.create_consumer(cluster.name)
    issue(first.slot)
    settings = agent_service.AgentSettings(
        cluster=cluster.name,
        kubeconfig=str(cluster.kubeconfig),
        kafka=KafkaSettings.secure(kafka_bootstrap, tls_dir_files(folder)),
        server=maestro_server.address,
        credentials=Credentials.from_folder(folder),
        topics=maestro_server.settings.topics,
        refresh_seconds=1.0,
        placement_check_seconds=1.0,
    )
    ready = asyncio.Event()
    links: list[agent_service.KafkaLink] = []
    task = asyncio.create_task(agent_service.run(settings, ready=ready, link_seen=links))
    try:
        async with asyncio.timeout(60):
            await ready.wait()
        before = uuid.uuid4()
        await source_client.apply(cluster.name, before, bundle_for(ns, "cm", "before"))

        async def applied(value: str) -> bool:
            return read_value(cluster, ns, "cm") == value

        await eventually(lambda: applied("before"))
        await source_client.delete(cluster.name, before)

        async def gone() -> bool:
            try:
                await source_client.get(before)
            except client_errors.NotFound:
                return True
            return False

        await eventually(gone)
        await source_client.delete_consumer(cluster.name)
        await asyncio.sleep(3)  # the agent notices, and waits for a registration
        assert not task.done(), "an agent whose cluster is not registered waits"
        second = await source_client.create_consumer(cluster.name)
        assert second.slot != first.slot and second.status_topic != first.status_topic
        issue(second.slot)

        after = uuid.uuid4()
        await source_client.apply(cluster.name, after, bundle_for(ns, "cm", "after"))
        await eventually(lambda: applied("after"), timeout=90)

        async def reported() -> bool:
            record = await source_client.get(after)
            return record.status is not None and any(
                c["type"] == "Applied" and c["status"] == "True" for c in record.status.conditions
            )

        await eventually(reported)
        assert not task.done(), "the same agent process"
        assert len(links) == 2, "one set of Kafka clients per registration"
    finally:
        task.cancel()
        async with asyncio.timeout(30):
            with contextlib.suppress(asyncio.CancelledError):
                await task
