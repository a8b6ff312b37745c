"""Hostile or broken input against a real server, PostgreSQL and Kafka: each bad item fails alone,
and the server's streams are bounded.

Cases: a PublishBatch with a NUL in one item's attribute and one item's metadata stores the others
and answers those two with INVALID_ARGUMENT naming the field; storage itself, handed a request or a
report that validation would have refused, fails only that one; an ingest batch holding a report
with a NUL, a report with sequence id 2^63-1 and good reports stores the good ones, keeps the status
updatable by the next real report and commits (nothing is read again); a status frozen by a stored
2^63-1 sequence is unfrozen by the next report; the stream limit refuses one more WatchStatus or
Subscribe with RESOURCE_EXHAUSTED and accepts again once one closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from confluent_kafka import Consumer, TopicPartition

from localinfra import ports
from maestro.api import bundle_events, bundles, errors, events
from maestro.client import MaestroClient
from maestro.server import app
from maestro.storage import store
from maestro.transport import cloudevents
from maestro.transport.messages import Outgoing
from maestro.transport.producer import Publisher
from maestro.wire import cloudevents as wire_events
from maestro.wire import stubs
from tests.integration.maestro.conftest import MaestroUnderTest
from tests.integration.maestro.test_server import bundle_of, configmap, eventually
from tests.integration.maestro.test_storage import create_request, report

pytestmark = pytest.mark.integration

INT64_MAX = (1 << 63) - 1


def spec_pb(rid: uuid.UUID, **meta: Any) -> stubs.cloudevent.CloudEvent:
    request = bundles.SpecRequest(
        bundles.SpecAction.CREATE,
        rid,
        "cluster-1",
        "test-source",
        0,
        bundle_of(configmap(f"cm-{rid.hex[:6]}")),
        metadata={"name": f"w-{rid.hex[:6]}", **meta},
    )
    return wire_events.to_pb(bundle_events.spec_request_event(request))


async def test_a_publish_batch_stores_the_good_items_and_refuses_each_poisoned_one(
    maestro_server: MaestroUnderTest, source_client: MaestroClient
) -> None:
    await source_client.create_consumer("cluster-1")
    ids = [uuid.uuid4() for _ in range(4)]
    items = [
        spec_pb(ids[0]),
        spec_pb(ids[1], labels={"app": "a\x00b"}),
        spec_pb(ids[2]),
        spec_pb(ids[3]),
    ]
    items[3].attributes["ce-clustername"].ce_string = "cluster-1\x00"
    stub = stubs.source_grpc.MaestroSourceStub(maestro_server.channel())
    reply = await stub.PublishBatch(stubs.source.PublishBatchRequest(events=items))
    codes = [grpc.StatusCode.OK.value[0]] * 4
    codes[1] = codes[3] = grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert [r.code for r in reply.results] == codes
    assert reply.results[1].message == "metadata.labels.app: contains a NUL character (remove it)"
    assert reply.results[3].message == "clustername: contains a NUL byte (remove it)"
    listed, _ = await source_client.list()
    assert sorted(r.bundle.id for r in listed) == sorted([ids[0], ids[2]])

    # One Publish alone is refused the same way, and the next one goes through.
    single = stubs.cloudevent_grpc.CloudEventServiceStub(maestro_server.channel())
    poisoned = spec_pb(uuid.uuid4())
    poisoned.source = "test-source\x00"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await single.Publish(stubs.cloudevent.PublishRequest(event=poisoned))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "source: contains a NUL byte (remove it)"
    await single.Publish(stubs.cloudevent.PublishRequest(event=spec_pb(uuid.uuid4())))
    assert await source_client.count() == 3


async def test_storage_refuses_what_slipped_past_validation_one_item_at_a_time(
    maestro_store: store.Store,
) -> None:
    await maestro_store.create_consumer("c1")
    good, bad, also_good = create_request("c1"), create_request("c1"), create_request("c1")
    bad = dataclasses.replace(bad, metadata={"name": "w", "annotations": {"a": "\x00"}})
    results = await maestro_store.apply_specs([good, bad, also_good])
    assert [type(r).__name__ for r in results] == ["SpecResult", "InvalidArgument", "SpecResult"]
    assert isinstance(results[1], errors.InvalidArgument) and "database refused" in str(results[1])
    assert await maestro_store.count_resources() == 2

    poisoned_source = dataclasses.replace(create_request("c1"), source="hub\x00")
    [refused] = await maestro_store.apply_specs([poisoned_source])
    assert isinstance(refused, errors.InvalidArgument)


async def test_a_stored_far_future_sequence_no_longer_freezes_the_status(maestro_store: store.Store) -> None:
    await maestro_store.create_consumer("c1")
    request = create_request("c1")
    await maestro_store.create_resource(request)
    rid = request.resource_id
    # As a server without the bound stored it.
    frozen = await maestro_store.ingest_statuses(
        [report(rid, "c1", version=1, seq=INT64_MAX)], max_sequence=INT64_MAX
    )
    assert len(frozen.stored) == 1
    now = time.time_ns()
    result = await maestro_store.ingest_statuses([report(rid, "c1", version=1, seq=now, applied="False")])
    assert len(result.stored) == 1
    record = await maestro_store.get_resource(rid)
    assert record.status is not None and record.status.sequence_id == now
    # A real status holds older ones off again; one beyond the limit, or for a version never given
    # out, is not stored.
    later = [
        report(rid, "c1", version=1, seq=now - 1),
        report(rid, "c1", version=1, seq=INT64_MAX),
        report(rid, "c1", version=2, seq=now + 5),
    ]
    assert not (await maestro_store.ingest_statuses(later[:1])).stored
    assert not (await maestro_store.ingest_statuses(later[1:2])).stored
    assert not (await maestro_store.ingest_statuses(later[2:])).stored
    assert (await maestro_store.get_resource(rid)).status.sequence_id == now  # type: ignore[union-attr]


def status_message(topic: str, record: bundles.ResourceBundle, sequence: int, message: str) -> Outgoing:
    """A status report as the bundle's agent sends it, on its cluster's status topic ``topic``."""
    status = bundles.BundleStatus(
        conditions=[{"type": "Applied", "status": "True", "reason": "Done", "message": message}],
        sequence_id=sequence,
    )
    rep = bundles.StatusReport(record.id, record.consumer, record.version, status, record.source, "")
    event = bundle_events.status_report_event(rep, source=f"agent-{record.consumer}")
    return cloudevents.to_message(event, topic=topic, key=record.consumer)


async def test_an_ingest_batch_with_poison_stores_the_good_reports_and_commits(
    maestro_server: MaestroUnderTest, source_client: MaestroClient
) -> None:
    topic = (await source_client.create_consumer("cluster-1")).status_topic
    ids = [uuid.uuid4() for _ in range(3)]
    for rid in ids:
        await source_client.apply("cluster-1", rid, bundle_of(configmap(f"cm-{rid.hex[:6]}")))
    records = [(await source_client.get(rid)).bundle for rid in ids]
    now = time.time_ns()
    publisher = Publisher(maestro_server.settings.kafka)
    try:
        # One produce call: the ingester reads these together.
        await publisher.publish(
            [
                status_message(topic, records[0], now, "good"),
                status_message(topic, records[1], now, "bad \x00 status"),
                status_message(topic, records[2], INT64_MAX, "from the far future"),
                status_message(topic, records[2], now + 1, "good too"),
            ]
        )

        async def both_good_stored() -> bool:
            first, third = await source_client.get(ids[0]), await source_client.get(ids[2])
            return first.status is not None and third.status is not None

        await eventually(both_good_stored)
        ingester = maestro_server.running.ingester
        assert (await source_client.get(ids[1])).status is None
        third = await source_client.get(ids[2])
        assert third.status is not None and third.status.sequence_id == now + 1

        # Updatable afterwards: the next real report replaces it.
        await publisher.publish([status_message(topic, records[2], time.time_ns(), "newer")])

        async def updated() -> bool:
            got = await source_client.get(ids[2])
            return got.status is not None and got.status.conditions[0]["message"] == "newer"

        await eventually(updated)
    finally:
        publisher.close()
    # Committed: the batch is not read again (each rejection counted once, nothing stored twice).
    stats = dataclasses.replace(ingester.stats)
    await asyncio.sleep(3)
    assert ingester.stats == stats
    assert stats.rejected == 2 and stats.stored == 3
    assert await committed_is_at_end(maestro_server, topic)


async def committed_is_at_end(server: MaestroUnderTest, topic: str) -> bool:
    """Whether the server's group committed every message of a status topic (asked without joining
    the group, with the server's own identity)."""

    def ask() -> bool:
        probe = Consumer(
            {**server.settings.kafka.client_config(), "group.id": server.settings.topics.server_group}
        )
        try:
            partitions = [
                TopicPartition(topic, p)
                for p in probe.list_topics(topic, timeout=10).topics[topic].partitions
            ]
            for tp in probe.committed(partitions, timeout=10):
                _, end = probe.get_watermark_offsets(tp, timeout=10, cached=False)
                if end > max(tp.offset, 0):
                    return False
            return True
        finally:
            probe.close()

    return await asyncio.to_thread(ask)


@contextlib.asynccontextmanager
async def limited_server(base: MaestroUnderTest, **limits: Any) -> AsyncIterator[MaestroUnderTest]:
    settings = dataclasses.replace(base.settings, port=ports.free_port(), **limits)
    running = await app.start(settings, migrate=False)
    try:
        yield MaestroUnderTest(running, settings, base.identities)
    finally:
        await running.stop()


async def test_the_stream_limit_refuses_one_more_and_accepts_again_after_one_closes(
    maestro_server: MaestroUnderTest,
) -> None:
    async with limited_server(maestro_server, max_streams=2) as server:
        channel = server.channel()
        query = stubs.query_grpc.MaestroQueryStub(channel)
        source = stubs.cloudevent_grpc.CloudEventServiceStub(channel)
        watch = stubs.query.WatchStatusRequest()
        subscribe = stubs.cloudevent.SubscriptionRequest(source="s1", data_type=events.MANIFEST_BUNDLES)

        async def opened(call: Any) -> Any:
            await asyncio.wait_for(call.read(), 10)  # the first keep-alive: the stream is served
            return call

        first = await opened(query.WatchStatus(watch))
        second = await opened(source.Subscribe(subscribe))
        for refused in (query.WatchStatus(watch), source.Subscribe(subscribe)):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await asyncio.wait_for(refused.read(), 10)
            assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "2 status streams open" in (caught.value.details() or "")
            assert "--max-streams" in (caught.value.details() or "")

        first.cancel()

        async def accepted_again() -> Any:
            call = query.WatchStatusBatches(watch)
            try:
                return await opened(call)
            except grpc.aio.AioRpcError as exc:
                assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                return None

        third = await eventually(accepted_again)
        second.cancel()
        third.cancel()
        await channel.close()
