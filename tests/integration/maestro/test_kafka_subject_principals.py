"""Per-cluster ACLs on brokers that cannot map certificate subjects (as Amazon MSK cannot).

A broker of the environment's CA with no ``ssl.principal.mapping.rules`` names every client by its
whole subject (``User:UID=<slot>,CN=<name>,OU=cluster,O=fleetplane``). The Maestro server's topic
admin, told so (``--kafka-principals subject``), grants clusters A and B their ACLs in that form:
A reads its own spec topic under its own group and writes its own status topic, and the broker
refuses it B's spec topic, B's status topic and B's group.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaError

from localinfra import kafka, pki
from localinfra.environment import Environment
from maestro.api import consumers
from maestro.transport import layout
from maestro.transport.acls import cluster_principal
from maestro.transport.admin import Topics
from maestro.transport.connection import KafkaSettings
from maestro.transport.consumer import Reader
from maestro.transport.errors import AuthorizationError
from maestro.transport.messages import Outgoing
from maestro.transport.producer import Publisher
from trust.identity import Identity, PrincipalForm

pytestmark = pytest.mark.integration

SUBJECT = PrincipalForm.SUBJECT
NAME = "kafka-subject"


@pytest.fixture(scope="module")
def unmapped_broker(infra_env: Environment) -> Iterator[kafka.Kafka]:
    broker = kafka.start(infra_env, NAME, heap="384m", principals=SUBJECT)
    try:
        yield broker
    finally:
        infra_env.stop_processes(NAME)


def as_identity(env: Environment, broker: kafka.Kafka, who: Identity) -> KafkaSettings:
    tls = pki.ensure_identity_files(env, who, hosts=("127.0.0.1", "localhost"), server=True)
    return KafkaSettings.secure(broker.bootstrap, tls, SUBJECT)


def registered(names: layout.Layout, name: str, slot: int) -> consumers.Consumer:
    """A consumer as the server registers it: slot n, its own spec and status topics."""
    return consumers.Consumer(
        name=name,
        placement=consumers.Placement(names.spec_topic(slot), 0),
        slot=slot,
        status_topic=names.status_topic(slot),
    )


async def test_a_cluster_uses_only_its_own_topics_under_acls_naming_its_subject(
    infra_env: Environment, unmapped_broker: kafka.Kafka
) -> None:
    names = layout.Layout(f"test.subject.{uuid.uuid4().hex[:8]}")
    a, b = registered(names, "cluster-a", 1), registered(names, "cluster-b", 2)
    topics = Topics(as_identity(infra_env, unmapped_broker, kafka.MAESTRO_SERVER), names=names)
    await topics.provision([a, b])
    granted = await asyncio.to_thread(topics.acls_of_sync, cluster_principal(a, SUBJECT))
    assert {acl.principal for acl in granted} == {"User:UID=1,CN=cluster-a,OU=cluster,O=fleetplane"}
    assert len(granted) == 3

    a_kafka = as_identity(infra_env, unmapped_broker, Identity.cluster(a.name, a.placement_slot))
    own = Reader(a_kafka, names.agent_group(a.name))
    try:
        await asyncio.to_thread(own.assign, [(a.spec_placement.topic, 0)])
        assert await own.poll_batch(10, 1.0) == []
    finally:
        own.close()
    for group, topic in (
        (names.agent_group(a.name), b.spec_placement.topic),
        (names.agent_group(b.name), a.spec_placement.topic),
    ):
        reader = Reader(a_kafka, group)
        try:
            with pytest.raises(AuthorizationError) as refused:
                await asyncio.to_thread(reader.assign, [(topic, 0)])
        finally:
            reader.close()
        assert refused.value.principal == "User:UID=1,CN=cluster-a,OU=cluster,O=fleetplane"
        assert refused.value.error is not None
        assert refused.value.error.code() in (
            KafkaError.TOPIC_AUTHORIZATION_FAILED,
            KafkaError.GROUP_AUTHORIZATION_FAILED,
        )

    publisher = Publisher(a_kafka)
    try:
        await publisher.publish([Outgoing(a.status_topic, a.name, [], b"mine")], timeout=30)
        with pytest.raises(AuthorizationError):
            await publisher.publish([Outgoing(b.status_topic, b.name, [], b"forged")], timeout=30)
    finally:
        await asyncio.to_thread(publisher.close)
