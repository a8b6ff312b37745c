"""Kafka secured end to end: per-cluster authorization that the broker itself enforces.

A Maestro server (a super user) registers clusters A and B; each gets a spec and a status topic of
its own and literal ACLs for its principal ``User:cluster.<name>.<slot>``. Against the broker's
real authorizer, each case asserts the error the client sees:

- A cannot read B's spec topic (TOPIC_AUTHORIZATION_FAILED) nor use B's group
  (GROUP_AUTHORIZATION_FAILED), nor write to B's status topic or its own spec topic
  (TOPIC_AUTHORIZATION_FAILED), nor create a topic (TOPIC_AUTHORIZATION_FAILED), nor describe the
  broker's configuration or grant itself an ACL (CLUSTER_AUTHORIZATION_FAILED); it sees no other
  cluster's topic in the metadata, no other cluster's group, and no ACL;
- a client with no certificate, or with one from another CA (even for the server's identity),
  cannot connect: it gets no metadata, and librdkafka reports the broker's TLS alert (bad
  certificate, certificate unknown);
- a status A writes on its own topic naming B's bundle is not stored (counted as foreign);
- A's real agent works end to end on its own topics, with its own certificate;
- deleting a consumer removes its ACLs and topics, and the cluster registered again under its
  name gets a new slot: its old certificate reads nothing of the new topics;
- consumers of a database from the single-topic layout get topics of their own on migration, and
  their topics and ACLs when the server starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AclOperation, AdminClient, ConfigResource, NewTopic, ResourceType

from localinfra import kafka, kube
from maestro.agent import service as agent_service
from maestro.api import bundle_events, bundles, consumers
from maestro.client import Credentials, MaestroClient
from maestro.server import app
from maestro.storage import migrations
from maestro.transport import cloudevents
from maestro.transport.acls import allow, cluster_principal, every_acl
from maestro.transport.admin import Topics
from maestro.transport.connection import KafkaSettings
from maestro.transport.consumer import Reader
from maestro.transport.errors import AuthorizationError
from maestro.transport.messages import Incoming, Outgoing
from maestro.transport.producer import Publisher
from tests.conftest import KafkaAs
from tests.integration.maestro.conftest import Identities, MaestroUnderTest, server_settings
from trust import authority
from trust.identity import Identity

pytestmark = pytest.mark.integration


def configmap_bundle(name: str) -> bundles.ManifestBundle:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}}
    return bundles.ManifestBundle(manifests=[cm], delete_option={"propagationPolicy": "Foreground"})


@pytest.fixture
async def two_clusters(
    source_client: MaestroClient,
) -> tuple[consumers.Consumer, consumers.Consumer]:
    a = await source_client.create_consumer("cluster-a")
    b = await source_client.create_consumer("cluster-b")
    return a, b


def as_cluster(kafka_as: KafkaAs, consumer: consumers.Consumer) -> KafkaSettings:
    return kafka_as(Identity.cluster(consumer.name, consumer.placement_slot))


def code_of(exc: BaseException) -> int | None:
    error = exc.args[0] if exc.args else None
    return error.code() if isinstance(error, KafkaError) else None


async def read_one(reader: Reader, timeout: float = 20) -> list[Incoming]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        got = await reader.poll_batch(10, 0.5)
        if got:
            return got
    return []


async def test_a_cluster_cannot_read_another_clusters_spec_topic(
    maestro_server: MaestroUnderTest,
    source_client: MaestroClient,
    two_clusters: tuple[consumers.Consumer, consumers.Consumer],
    kafka_as: KafkaAs,
) -> None:
    a, b = two_clusters
    await source_client.apply(b.name, uuid.uuid4(), configmap_bundle("for-b"))
    a_kafka = as_cluster(kafka_as, a)
    # A's own spec topic, under its own group: allowed (nothing there yet).
    own = Reader(a_kafka, maestro_server.settings.topics.agent_group(a.name))
    try:
        await asyncio.to_thread(own.assign, [(a.spec_placement.topic, 0)])
        assert await own.poll_batch(10, 1.0) == []
    finally:
        own.close()
    # B's spec topic, under A's group: refused when assigned (librdkafka would otherwise wait on it
    # without a word), and a fetch of it is refused by the broker.
    refused = await refused_assignment(a_kafka, maestro_server.settings.topics.agent_group(a.name), b)
    assert refused.error is not None and refused.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert refused.principal == f"User:cluster.{a.name}.{a.placement_slot}"
    # What the broker answers A about B's topic, in the metadata.
    admin = AdminClient(a_kafka.client_config())
    metadata = admin.list_topics(b.spec_placement.topic, timeout=10).topics[b.spec_placement.topic]
    assert metadata.error is not None and metadata.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # B's group is not A's to use either.
    group_refused = await refused_assignment(a_kafka, maestro_server.settings.topics.agent_group(b.name), a)
    assert group_refused.error is not None
    assert group_refused.error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED


async def test_a_cluster_cannot_write_another_clusters_status_topic(
    two_clusters: tuple[consumers.Consumer, consumers.Consumer], kafka_as: KafkaAs
) -> None:
    a, b = two_clusters
    publisher = Publisher(as_cluster(kafka_as, a))
    try:
        await publisher.publish([Outgoing(a.status_topic, a.name, [], b"mine")], timeout=30)
        with pytest.raises(AuthorizationError) as refused:
            await publisher.publish([Outgoing(b.status_topic, b.name, [], b"forged")], timeout=30)
        with pytest.raises(AuthorizationError):
            await publisher.publish([Outgoing(a.spec_placement.topic, a.name, [], b"x")], timeout=30)
    finally:
        await asyncio.to_thread(publisher.close)
    assert refused.value.error is not None
    assert refused.value.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert b.status_topic in str(refused.value)


async def test_a_cluster_cannot_create_topics_nor_describe_the_cluster(
    two_clusters: tuple[consumers.Consumer, consumers.Consumer], kafka_as: KafkaAs
) -> None:
    a, b = two_clusters
    admin = AdminClient(as_cluster(kafka_as, a).client_config())
    topic = f"{a.spec_placement.topic}.extra"
    with pytest.raises(KafkaException) as created:
        admin.create_topics([NewTopic(topic, 1, 1)], operation_timeout=10)[topic].result(30)
    assert code_of(created.value) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    with pytest.raises(KafkaException) as described:
        broker = ConfigResource(ConfigResource.Type.BROKER, "1")
        admin.describe_configs([broker], request_timeout=10)[broker].result(30)
    assert code_of(described.value) == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    # It can neither grant itself more, nor see who holds what.
    more = allow(
        ResourceType.TOPIC,
        b.spec_placement.topic,
        cluster_principal(a),
        AclOperation.READ,
    )
    with pytest.raises(KafkaException) as granted:
        for fut in admin.create_acls([more], request_timeout=10).values():
            fut.result(30)
    assert code_of(granted.value) == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    assert admin.describe_acls(every_acl(), request_timeout=10).result(30) == []
    # Groups are listed only as far as it may describe them: none of the others'.
    groups = admin.list_consumer_groups(request_timeout=10).result(30)
    assert all(g.group_id.endswith(f".agent.{a.name}") for g in groups.valid), groups.valid
    # The metadata it gets names its own topics only.
    seen = set(admin.list_topics(timeout=30).topics)
    assert {a.spec_placement.topic, a.status_topic} <= seen
    assert not {b.spec_placement.topic, b.status_topic} & seen


def _handshake(config: dict[str, Any]) -> tuple[bool, list[KafkaError]]:
    """Whether a client with ``config`` gets the broker's metadata, and the errors it is told of."""
    errors: list[KafkaError] = []
    consumer = Consumer({**config, "group.id": f"probe-{uuid.uuid4().hex}", "error_cb": errors.append})
    try:
        consumer.list_topics(timeout=8)
        return True, errors
    except KafkaException:
        return False, errors
    finally:
        consumer.close()


def test_a_client_without_a_certificate_cannot_connect(kafka_settings: KafkaSettings) -> None:
    config = kafka_settings.client_config()
    del config["ssl.certificate.location"], config["ssl.key.location"]
    connected, errors = _handshake(config)
    assert not connected
    # Kafka's TLS alert, as librdkafka reports the connection it lost
    assert any(_tls_refusal(e, "bad certificate") for e in errors), [e.str() for e in errors]


def _tls_refusal(error: KafkaError, alert: str) -> bool:
    return error.code() in (KafkaError._SSL, KafkaError._TRANSPORT) and f"alert {alert}" in error.str()


def test_a_certificate_from_another_ca_cannot_connect(kafka_settings: KafkaSettings, tmp_path: Path) -> None:
    other = authority.CertificateAuthority.create()
    # Another CA's certificate for the server's very identity: the subject alone proves nothing.
    forged = other.issue(kafka.MAESTRO_SERVER).write(tmp_path, "tls", other.cert_pem)
    assert kafka_settings.tls is not None
    config = {
        **kafka_settings.client_config(),
        "ssl.certificate.location": str(forged.cert),
        "ssl.key.location": str(forged.key),
    }
    connected, errors = _handshake(config)
    assert not connected
    assert any(_tls_refusal(e, "certificate unknown") for e in errors), [e.str() for e in errors]


async def test_a_status_naming_another_clusters_bundle_is_not_stored(
    maestro_server: MaestroUnderTest,
    source_client: MaestroClient,
    two_clusters: tuple[consumers.Consumer, consumers.Consumer],
    kafka_as: KafkaAs,
) -> None:
    a, b = two_clusters
    theirs = uuid.uuid4()
    await source_client.apply(b.name, theirs, configmap_bundle("for-b"))
    record = (await source_client.get(theirs)).bundle
    status = bundles.BundleStatus(
        conditions=[{"type": "Deleted", "status": "True", "reason": "Forged", "message": "gone"}],
        resource_status=[],
        sequence_id=1 << 40,
    )
    # Written by A, on A's own status topic (all A may write to), claiming to be B.
    forged = bundles.StatusReport(theirs, b.name, record.version, status, record.source, "")
    event = bundle_events.status_report_event(forged, source=f"agent-{b.name}")
    resync = bundle_events.spec_resync_request_event(b.name, {}, source=f"agent-{b.name}")
    publisher = Publisher(as_cluster(kafka_as, a))
    try:
        await publisher.publish(
            [
                cloudevents.to_message(event, topic=a.status_topic, key=b.name),
                cloudevents.to_message(resync, topic=a.status_topic, key=b.name),
            ]
        )
    finally:
        await asyncio.to_thread(publisher.close)
    stats = maestro_server.running.ingester.stats
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 40
    for _ in range(200):
        if stats.foreign >= 2 or loop.time() > deadline:
            break
        await asyncio.sleep(0.2)
    assert stats.foreign == 2 and stats.resyncs == 0
    kept = await source_client.get(theirs)
    assert kept.status is None and kept.bundle.deleted_at is None


async def refused_assignment(
    kafka_settings: KafkaSettings, group: str, consumer: consumers.Consumer
) -> AuthorizationError:
    """What Kafka answers a reader in ``group`` assigned ``consumer``'s spec topic (it must refuse)."""
    reader = Reader(kafka_settings, group)
    try:
        with pytest.raises(AuthorizationError) as refused:
            await asyncio.to_thread(reader.assign, [(consumer.spec_placement.topic, 0)])
    finally:
        reader.close()
    return refused.value


@contextlib.asynccontextmanager
async def agent_of(
    server: MaestroUnderTest, cluster: kube.Cluster, kafka: KafkaSettings
) -> AsyncIterator[asyncio.Task[None]]:
    settings = agent_service.AgentSettings(
        cluster=cluster.name,
        kubeconfig=str(cluster.kubeconfig),
        kafka=kafka,
        server=server.address,
        # the same identity for the placement lookup as for Kafka: the cluster's
        credentials=Credentials.from_folder(kafka.tls.ca.parent) if kafka.tls else Credentials.insecure(),
        topics=server.settings.topics,
        refresh_seconds=1.0,
    )
    ready = asyncio.Event()
    task = asyncio.create_task(agent_service.run(settings, ready=ready))
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait([task, waiter], timeout=60, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, SystemExit, AuthorizationError):
            await task


async def test_a_clusters_agent_works_on_its_own_topics_with_its_own_certificate(
    maestro_server: MaestroUnderTest,
    source_client: MaestroClient,
    worker_clusters: list[kube.Cluster],
    kafka_as: KafkaAs,
) -> None:
    cluster = worker_clusters[0]
    registered = await source_client.create_consumer(cluster.name)
    work = uuid.uuid4()
    name = f"secure-{uuid.uuid4().hex[:6]}"
    async with agent_of(maestro_server, cluster, as_cluster(kafka_as, registered)) as task:
        assert not task.done()
        await source_client.apply(cluster.name, work, configmap_bundle(name))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while loop.time() < deadline:
            record = await source_client.get(work)
            if record.status is not None:
                break
            await asyncio.sleep(0.3)
        assert record.status is not None
        assert {c["type"]: c["status"] for c in record.status.conditions}["Applied"] == "True"
    # The certificate of another cluster is refused before the agent reads anything.
    other = as_cluster(kafka_as, consumers.Consumer("cluster-z", slot=registered.placement_slot + 1000))
    placement = await source_client.get_consumer(cluster.name)
    with pytest.raises(SystemExit, match="issue the agent a certificate of that identity"):
        agent_service.check_identity(other, placement)
    await source_client.delete(cluster.name, work)


async def test_deleting_a_consumer_removes_its_acls_and_topics_and_its_old_certificate_reads_nothing_new(
    maestro_server: MaestroUnderTest,
    source_client: MaestroClient,
    kafka_settings: KafkaSettings,
    kafka_as: KafkaAs,
) -> None:
    admin = Topics(kafka_settings, names=maestro_server.settings.topics)
    first = await source_client.create_consumer("cluster-again")
    principal = cluster_principal(first)
    assert len(await asyncio.to_thread(admin.acls_of_sync, principal)) == 3
    old_kafka = as_cluster(kafka_as, first)
    await source_client.delete_consumer(first.name)
    assert await asyncio.to_thread(admin.acls_of_sync, principal) == []
    topics = set(AdminClient(kafka_settings.client_config()).list_topics(timeout=30).topics)
    assert not {first.spec_placement.topic, first.status_topic} & topics

    second = await source_client.create_consumer("cluster-again")
    assert second.placement_slot != first.placement_slot
    await source_client.apply(second.name, uuid.uuid4(), configmap_bundle("new"))
    stale = Reader(old_kafka, maestro_server.settings.topics.agent_group(second.name))
    try:
        with pytest.raises(AuthorizationError) as refused:
            await asyncio.to_thread(stale.assign, [(second.spec_placement.topic, 0)])
    finally:
        stale.close()
    # neither the group nor the topic is the old principal's: the group is asked first
    assert refused.value.error is not None
    assert refused.value.error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED


async def _at_version_2(dsn: str) -> None:
    """The schema as the single-topic layout left it (migrations 1 and 2)."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(
            "CREATE TABLE maestro_schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for migration in migrations.available():
            if migration.version <= 2:
                await conn.execute(migration.sql.encode())
                await conn.execute(
                    "INSERT INTO maestro_schema_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )


async def test_consumers_of_the_single_topic_layout_get_topics_of_their_own(
    pg_dsn: str, kafka_settings: KafkaSettings, identities: Identities
) -> None:
    await _at_version_2(pg_dsn)
    settings = server_settings(pg_dsn, kafka_settings, identities)
    prefix = settings.topics.prefix
    async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as conn:
        for name in ("old-0", "old-1"):
            cur = await conn.execute("SELECT nextval('placement_slot_seq')")
            row = await cur.fetchone()
            assert row is not None
            await conn.execute(
                "INSERT INTO consumers (name, placement_slot, spec_topic, spec_partition) "
                "VALUES (%s, %s, %s, %s)",
                (name, row[0], f"{prefix}.spec", row[0]),
            )
    running = await app.start(settings)
    try:
        async with MaestroClient(
            f"127.0.0.1:{running.port}", source="migrated", credentials=identities.credentials()
        ) as client:
            old = [await client.get_consumer(name) for name in ("old-0", "old-1")]
            assert [(c.spec_placement, c.status_topic) for c in old] == [
                (consumers.Placement(f"{prefix}.spec.0", 0), f"{prefix}.status.0"),
                (consumers.Placement(f"{prefix}.spec.1", 0), f"{prefix}.status.1"),
            ]
            fresh = await client.create_consumer("new")
            assert fresh.placement_slot == 2 and fresh.status_topic == f"{prefix}.status.2"
        admin = Topics(kafka_settings, names=settings.topics)
        topics = set(AdminClient(kafka_settings.client_config()).list_topics(timeout=30).topics)
        for consumer in old:
            assert {consumer.spec_placement.topic, consumer.status_topic} <= topics
            granted = await asyncio.to_thread(admin.acls_of_sync, cluster_principal(consumer))
            assert len(granted) == 3
    finally:
        await running.stop()


def test_the_broker_maps_each_subject_to_its_principal(
    kafka_as: KafkaAs, kafka_settings: KafkaSettings
) -> None:
    """What Kafka saw of a certificate is the principal ACLs name: one ACL on a topic for the
    principal `Identity.kafka_principal` computes, and a client with that certificate can use it."""
    who = Identity.cluster("mapping-check", 77)
    topic = f"test.mapping.{uuid.uuid4().hex[:8]}"
    admin = AdminClient(kafka_settings.client_config())
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    grant = allow(ResourceType.TOPIC, topic, who.kafka_principal, AclOperation.DESCRIBE)
    for fut in admin.create_acls([grant]).values():
        fut.result(30)
    consumer = Consumer({**kafka_as(who).client_config(), "group.id": "unused"})
    try:
        low_high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=20)
    finally:
        consumer.close()
    assert low_high == (0, 0)
