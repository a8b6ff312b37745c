"""The whole pipeline on real components: server, PostgreSQL, Kafka, and real agents applying to
real kube-apiservers.

Cases: a bundle for each of two clusters is applied in the right cluster only, and its status
(conditions and feedback values) reaches the query API; an update changes the object; a delete
removes it from the cluster and the bundle from Maestro; an agent restarted later resyncs and
applies what it missed while it was down; a change made in the cluster to an applied object reaches
the query API through the agent's watch, long before its periodic re-read; an agent whose
certificate is renewed twice in place goes on, in the same process, with new Kafka clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import functools
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from localinfra import kube
from maestro.agent import service as agent_service
from maestro.api import bundles
from maestro.client import Credentials, MaestroClient
from maestro.transport.connection import KafkaSettings, tls_dir_files
from tests.conftest import KafkaAs
from tests.integration.maestro.conftest import MaestroUnderTest
from trust.identity import Identity

pytestmark = pytest.mark.integration


def bundle_for(namespace: str, name: str, value: str) -> bundles.ManifestBundle:
    return bundles.ManifestBundle(
        manifests=[
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": namespace},
                "data": {"value": value},
            },
        ],
        delete_option={"propagationPolicy": "Foreground"},
        manifest_configs=[
            {
                "resourceIdentifier": {
                    "group": "",
                    "resource": "configmaps",
                    "name": name,
                    "namespace": namespace,
                },
                "feedbackRules": [
                    {"type": "JSONPaths", "jsonPaths": [{"name": "value", "path": ".data.value"}]}
                ],
                "updateStrategy": {"type": "ServerSideApply"},
            }
        ],
    )


def read_value(cluster: kube.Cluster, namespace: str, name: str) -> str | None:
    api = client.CoreV1Api(config.new_client_from_config(str(cluster.kubeconfig)))
    try:
        return str(api.read_namespaced_config_map(name, namespace).data["value"])
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


async def feedback_value(source: MaestroClient, work: uuid.UUID) -> str | None:
    record = await source.get(work)
    if record.status is None:
        return None
    for rs in record.status.resource_status:
        for value in (rs.get("statusFeedback") or {}).get("values", []):
            if value["name"] == "value":
                return str(value["fieldValue"].get("string"))
    return None


async def eventually(check: Any, timeout: float = 60) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        await asyncio.sleep(0.3)


@contextlib.asynccontextmanager
async def running_agent(
    server: MaestroUnderTest, cluster: kube.Cluster, kafka_as: KafkaAs, refresh_seconds: float = 1.0
) -> AsyncIterator[None]:
    async with server.client() as admin:
        slot = (await admin.get_consumer(cluster.name)).slot
    assert slot is not None
    settings = agent_service.AgentSettings(
        cluster=cluster.name,
        kubeconfig=str(cluster.kubeconfig),
        kafka=kafka_as(Identity.cluster(cluster.name, slot)),
        server=server.address,
        # the agent's own identity: its cluster, as registered
        credentials=server.credentials(Identity.cluster(cluster.name, slot)),
        topics=server.settings.topics,
        refresh_seconds=refresh_seconds,
    )
    ready = asyncio.Event()
    task = asyncio.create_task(agent_service.run(settings, ready=ready))
    await asyncio.wait_for(ready.wait(), 60)
    try:
        yield
    finally:
        task.cancel()
        # An agent that does not stop when told to is a failure of its own, not a hung test.
        async with asyncio.timeout(30):
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_create_update_delete_on_two_real_clusters(
    maestro_server: MaestroUnderTest,
    source_client: MaestroClient,
    worker_clusters: list[kube.Cluster],
    kafka_as: KafkaAs,
) -> None:
    one, two = worker_clusters
    ns = f"pipe-{uuid.uuid4().hex[:6]}"
    for cluster in worker_clusters:
        await source_client.create_consumer(cluster.name)
    work1, work2 = uuid.uuid4(), uuid.uuid4()
    async with running_agent(maestro_server, one, kafka_as), running_agent(maestro_server, two, kafka_as):
        await source_client.apply(one.name, work1, bundle_for(ns, "cm-one", "a"))
        await source_client.apply(two.name, work2, bundle_for(ns, "cm-two", "b"))

        async def applied() -> bool:
            return read_value(one, ns, "cm-one") == "a" and read_value(two, ns, "cm-two") == "b"

        await eventually(applied)
        assert read_value(one, ns, "cm-two") is None and read_value(two, ns, "cm-one") is None

        async def status_with_feedback() -> Any:
            record = await source_client.get(work1)
            if record.status is None:
                return None
            values = [
                v
                for rs in record.status.resource_status
                for v in (rs.get("statusFeedback") or {}).get("values", [])
            ]
            return values if any(v["fieldValue"].get("string") == "a" for v in values) else None

        await eventually(status_with_feedback)
        record = await source_client.get(work1)
        assert record.status is not None
        assert {c["type"]: c["status"] for c in record.status.conditions}["Applied"] == "True"

        await source_client.apply(one.name, work1, bundle_for(ns, "cm-one", "a2"), create=False)

        async def updated() -> bool:
            return read_value(one, ns, "cm-one") == "a2"

        await eventually(updated)

        await source_client.delete(one.name, work1)

        async def deleted() -> bool:
            listed, _ = await source_client.list()
            return read_value(one, ns, "cm-one") is None and [r.bundle.id for r in listed] == [work2]

        await eventually(deleted)
        assert read_value(two, ns, "cm-two") == "b"


async def test_agent_resyncs_what_it_missed_while_down(
    maestro_server: MaestroUnderTest,
    source_client: MaestroClient,
    worker_clusters: list[kube.Cluster],
    kafka_as: KafkaAs,
) -> None:
    cluster = worker_clusters[0]
    ns = f"resync-{uuid.uuid4().hex[:6]}"
    await source_client.create_consumer(cluster.name)
    work = uuid.uuid4()
    async with running_agent(maestro_server, cluster, kafka_as):
        await source_client.apply(cluster.name, work, bundle_for(ns, "cm", "v1"))

        async def v1() -> bool:
            return read_value(cluster, ns, "cm") == "v1"

        await eventually(v1)
    # The agent is down: an update and a new work wait in Kafka and PostgreSQL.
    later = uuid.uuid4()
    await source_client.apply(cluster.name, work, bundle_for(ns, "cm", "v2"), create=False)
    await source_client.apply(cluster.name, later, bundle_for(ns, "cm-later", "x"))
    async with running_agent(maestro_server, cluster, kafka_as):

        async def caught_up() -> bool:
            return read_value(cluster, ns, "cm") == "v2" and read_value(cluster, ns, "cm-later") == "x"

        await eventually(caught_up)

        async def both_reported() -> bool:
            records = [await source_client.get(w) for w in (work, later)]
            return all(r.status is not None and r.status_version == r.bundle.version for r in records)

        await eventually(both_reported)
    status = (await source_client.get(work)).status
    assert status is not None and json.dumps(status.to_json())


async def test_a_change_in_the_cluster_is_reported_when_it_happens(
    maestro_server: MaestroUnderTest,
    source_client: MaestroClient,
    worker_clusters: list[kube.Cluster],
    kafka_as: KafkaAs,
) -> None:
    cluster = worker_clusters[0]
    ns = f"watch-{uuid.uuid4().hex[:6]}"
    await source_client.create_consumer(cluster.name)
    work = uuid.uuid4()
    # An hour between full re-reads: only the watch can bring the change back within the test.
    async with running_agent(maestro_server, cluster, kafka_as, refresh_seconds=3600):
        await source_client.apply(cluster.name, work, bundle_for(ns, "cm", "as-applied"))

        async def reported(value: str) -> bool:
            return await feedback_value(source_client, work) == value

        await eventually(lambda: reported("as-applied"))

        # Someone edits the object in the cluster (as Argo CD writes an Application's status).
        api = client.CoreV1Api(config.new_client_from_config(str(cluster.kubeconfig)))
        await asyncio.to_thread(api.patch_namespaced_config_map, "cm", ns, {"data": {"value": "edited"}})
        await eventually(lambda: reported("edited"), timeout=20)
        # The edit was reported, not reverted: the agent writes only when the spec changes.
        assert read_value(cluster, ns, "cm") == "edited"


async def test_an_agent_works_on_across_two_renewals_of_its_short_lived_certificate(
    maestro_server: MaestroUnderTest,
    source_client: MaestroClient,
    worker_clusters: list[kube.Cluster],
    kafka_bootstrap: str,
) -> None:
    """The agent's certificate lives 30 s and is replaced in place twice, as the provisioner renews
    it; the same agent process makes its Kafka clients again with each new one and keeps applying
    works after the first certificate has expired."""
    cluster = worker_clusters[1]
    ns = f"renew-{uuid.uuid4().hex[:6]}"
    consumer = await source_client.create_consumer(cluster.name)
    who = Identity.cluster(cluster.name, consumer.placement_slot)
    ca = maestro_server.identities.ca
    folder = maestro_server.identities.folder / f"renewed-{cluster.name}"

    def issue() -> datetime.datetime:
        issued = ca.issue(who, lifetime=datetime.timedelta(seconds=30))
        issued.write(folder, "tls", ca.cert_pem)
        return issued.not_after

    first_expiry = issue()
    settings = agent_service.AgentSettings(
        cluster=cluster.name,
        kubeconfig=str(cluster.kubeconfig),
        kafka=KafkaSettings.secure(kafka_bootstrap, tls_dir_files(folder)),
        server=maestro_server.address,
        credentials=Credentials.from_folder(folder),
        topics=maestro_server.settings.topics,
        refresh_seconds=1.0,
    )
    ready = asyncio.Event()
    links: list[agent_service.KafkaLink] = []
    task = asyncio.create_task(agent_service.run(settings, ready=ready, link_seen=links))
    try:
        async with asyncio.timeout(60):
            await ready.wait()
        for renewal in (1, 2):
            await asyncio.sleep(12)
            issue()
            await eventually(functools.partial(_renewed, links[0], renewal), timeout=30)
        left = (first_expiry - datetime.datetime.now(datetime.UTC)).total_seconds()
        await asyncio.sleep(max(0.0, left) + 1)
        work = uuid.uuid4()
        await source_client.apply(cluster.name, work, bundle_for(ns, "cm", "after-renewals"))

        async def applied() -> bool:
            return read_value(cluster, ns, "cm") == "after-renewals"

        await eventually(applied)

        async def reported() -> bool:
            record = await source_client.get(work)
            return record.status is not None and any(
                c["type"] == "Applied" and c["status"] == "True" for c in record.status.conditions
            )

        await eventually(reported)
        assert not task.done(), "the same agent process"
        assert links[0].renewals == 2
    finally:
        task.cancel()
        async with asyncio.timeout(30):
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _renewed(link: agent_service.KafkaLink, times: int) -> bool:
    return link.renewals >= times
