"""The Maestro server end to end over real PostgreSQL and Kafka (agents simulated at the Kafka edge).

Cases: a consumer gets its own spec partition; a created bundle is listed through the query API
and its spec event lands on that partition only, in the CloudEvents binary binding; an agent's
status event is ingested, shows in the query API and on the resumable watch and the source's
Subscribe stream; a stale status is dropped; a delete confirmed by the agent hard-deletes; a delete
the agent never confirms is orphaned after the grace period; bad input gets a gRPC error naming
the problem and stores nothing.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import grpc
import pytest
from typer.testing import CliRunner

from fleetplane import cli
from maestro import client_errors
from maestro.api import bundle_events, bundles, events, listing, queries
from maestro.client import MaestroClient
from maestro.transport import cloudevents
from maestro.transport.consumer import Reader
from maestro.transport.messages import Incoming
from maestro.transport.producer import Publisher
from maestro.wire import cloudevents as wire_events
from maestro.wire import stubs
from tests.integration.maestro.conftest import ADMIN, MaestroUnderTest

pytestmark = pytest.mark.integration


def configmap(name: str, value: str = "v1") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": {"key": value},
    }


def bundle_of(*manifests: dict[str, Any]) -> bundles.ManifestBundle:
    return bundles.ManifestBundle(
        manifests=list(manifests), delete_option={"propagationPolicy": "Foreground"}
    )


async def read_partition(
    server: MaestroUnderTest, topic: str, partition: int, want: int, timeout: float = 20
) -> list[Incoming]:
    reader = Reader(server.settings.kafka, f"probe-{uuid.uuid4().hex[:6]}")
    reader.assign([(topic, partition)])
    got: list[Incoming] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(got) < want and loop.time() < deadline:
            got.extend(await reader.poll_batch(100, 0.5))
    finally:
        reader.close()
    return got


async def send_status(
    server: MaestroUnderTest, record: bundles.ResourceBundle, sequence: int, conditions: list[dict[str, Any]]
) -> None:
    """A status report on the status topic of the bundle's consumer, as its agent sends it."""
    status = bundles.BundleStatus(conditions=conditions, resource_status=[], sequence_id=sequence)
    report = bundles.StatusReport(record.id, record.consumer, record.version, status, record.source, "")
    event = bundle_events.status_report_event(report, source=f"agent-{record.consumer}")
    async with server.client(source="test-agent") as client:
        topic = (await client.get_consumer(record.consumer)).status_topic
    publisher = Publisher(server.settings.kafka)
    try:
        await publisher.publish([cloudevents.to_message(event, topic=topic, key=record.consumer)])
    finally:
        publisher.close()


async def eventually(check: Any, timeout: float = 20) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        await asyncio.sleep(0.2)


APPLIED = [{"type": "Applied", "status": "True", "reason": "AppliedManifestWorkComplete", "message": "ok"}]


async def test_create_reaches_only_its_clusters_partition_and_status_comes_back(
    maestro_server: MaestroUnderTest, source_client: MaestroClient
) -> None:
    c1 = await source_client.create_consumer("cluster-1", {"env": "dev"})
    c2 = await source_client.create_consumer("cluster-2")
    assert c1.placement.topic != c2.placement.topic and c1.status_topic != c2.status_topic
    work = uuid.uuid4()
    await source_client.apply("cluster-1", work, bundle_of(configmap("cm1")), metadata={"name": "w1"})

    listed, _ = await source_client.list(queries.ResourceFilter(consumer="cluster-1"))
    assert [r.bundle.id for r in listed] == [work]
    record = listed[0].bundle
    assert record.version == 1 and record.manifests[0]["metadata"]["name"] == "cm1"

    mine = await read_partition(maestro_server, c1.placement.topic, c1.placement.partition, 1)
    assert len(mine) == 1
    msg = mine[0]
    assert msg.attributes["type"].endswith("manifestbundles.spec.create_request")
    assert msg.attributes["resourceid"] == str(work) and msg.attributes["clustername"] == "cluster-1"
    assert msg.content_type == "application/json"
    assert json.loads(msg.value or b"")["manifests"][0]["metadata"]["name"] == "cm1"
    assert (
        await read_partition(maestro_server, c2.placement.topic, c2.placement.partition, 1, timeout=3) == []
    )

    watcher = source_client.watch()
    subscribe = stubs.cloudevent_grpc.CloudEventServiceStub(maestro_server.channel())
    stream = subscribe.Subscribe(
        stubs.cloudevent.SubscriptionRequest(source="test-source", data_type=events.MANIFEST_BUNDLES)
    )
    assert "subscription-id" in dict(await stream.initial_metadata())

    await send_status(maestro_server, record, 10, APPLIED)
    change = await asyncio.wait_for(anext(watcher), 20)
    assert (
        change.resource_id == str(work)
        and json.loads(change.status_json)["conditions"][0]["type"] == "Applied"
    )

    async def first_status() -> stubs.cloudevent.CloudEvent:
        async for pb in stream:
            if not wire_events.from_pb(pb).is_heartbeat:
                return pb
        raise AssertionError("stream ended")

    status_event = wire_events.from_pb(await asyncio.wait_for(first_status(), 20))
    assert status_event.extensions["resourceid"] == str(work)
    stream.cancel()

    # An older sequence is stale: the stored status does not go back.
    await send_status(
        maestro_server, record, 5, [{"type": "Applied", "status": "False", "reason": "Old", "message": "old"}]
    )
    await asyncio.sleep(2)
    stored = await source_client.get(work)
    assert stored.status is not None and stored.status.sequence_id == 10
    assert maestro_server.running.ingester.stats.dropped >= 1


async def test_delete_confirmed_by_agent_and_orphaned_without_agent(
    maestro_server: MaestroUnderTest, source_client: MaestroClient
) -> None:
    await source_client.create_consumer("cluster-1")
    confirmed, abandoned = uuid.uuid4(), uuid.uuid4()
    for work in (confirmed, abandoned):
        await source_client.apply("cluster-1", work, bundle_of(configmap(f"cm-{work.hex[:6]}")))
        await source_client.delete("cluster-1", work)
    record = (await source_client.get(confirmed)).bundle
    assert record.deleted_at is not None
    await send_status(
        maestro_server,
        record,
        20,
        [{"type": "Deleted", "status": "True", "reason": "ManifestsDeleted", "message": "gone"}],
    )

    async def both_gone() -> bool:
        listed, _ = await source_client.list()
        return not listed

    await eventually(both_gone, timeout=30)
    assert maestro_server.running.reaper.orphaned >= 1

    async def orphan_reported() -> bool:
        async for change in source_client.watch(""):
            if change.resource_id == str(abandoned) and change.deletion is listing.DeletionState.DELETED:
                reasons = [c["reason"] for c in json.loads(change.status_json)["conditions"]]
                return "Orphaned" in reasons
        return False

    assert await asyncio.wait_for(orphan_reported(), 20)


@pytest.mark.parametrize(
    ("mutate", "code", "names"),
    [
        (lambda e: e.ClearField("type"), grpc.StatusCode.INVALID_ARGUMENT, "type"),
        (
            lambda e: setattr(e, "type", "io.example.unknown.spec.create_request"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "type",
        ),
        (lambda e: e.attributes.pop("ce-resourceid"), grpc.StatusCode.INVALID_ARGUMENT, "resourceid"),
        (
            lambda e: setattr(e, "binary_data", b'{"manifests": [{"kind": "ConfigMap"}]}'),
            grpc.StatusCode.INVALID_ARGUMENT,
            "apiVersion",
        ),
        (lambda e: setattr(e, "binary_data", b"{not json"), grpc.StatusCode.INVALID_ARGUMENT, "data"),
        (
            lambda e: e.attributes["ce-clustername"].__setattr__("ce_string", "nobody"),
            grpc.StatusCode.NOT_FOUND,
            "nobody",
        ),
        (
            lambda e: setattr(
                e,
                "binary_data",
                json.dumps(
                    {"manifests": [{**configmap("big"), "data": {"k": "x" * (1024 * 1024)}}]}
                ).encode(),
            ),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "limit",
        ),
    ],
    ids=[
        "no-type",
        "unknown-type",
        "missing-resourceid",
        "invalid-manifest",
        "malformed-json",
        "unknown-consumer",
        "over-size",
    ],
)
async def test_bad_input_is_refused_and_stores_nothing(
    maestro_server: MaestroUnderTest,
    source_client: MaestroClient,
    mutate: Any,
    code: grpc.StatusCode,
    names: str,
) -> None:
    await source_client.create_consumer("cluster-1")
    request = bundles.SpecRequest(
        bundles.SpecAction.CREATE, uuid.uuid4(), "cluster-1", "test-source", 0, bundle_of(configmap("cm"))
    )
    pb = wire_events.to_pb(bundle_events.spec_request_event(request))
    mutate(pb)
    stub = stubs.cloudevent_grpc.CloudEventServiceStub(
        maestro_server.channel(options=[("grpc.max_send_message_length", 4 * 1024 * 1024)])
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Publish(stubs.cloudevent.PublishRequest(event=pb))
    assert err.value.code() == code
    assert names.lower() in (err.value.details() or "").lower()
    listed, _ = await source_client.list()
    assert listed == []


async def test_a_listed_bundle_is_what_get_returns(
    maestro_server: MaestroUnderTest, source_client: MaestroClient
) -> None:
    # Listing passes stored documents and times through without decoding them: same answer as get.
    await source_client.create_consumer("cluster-list")
    kept, deleted = uuid.uuid4(), uuid.uuid4()
    for work in (kept, deleted):
        await source_client.apply("cluster-list", work, bundle_of(configmap(f"cm-{work.hex[:6]}")))
    await source_client.delete("cluster-list", deleted)
    listed, _ = await source_client.list(queries.ResourceFilter(consumer="cluster-list"))
    by_id = {r.bundle.id: r for r in listed}
    assert set(by_id) == {kept, deleted}
    for work in (kept, deleted):
        got = await source_client.get(work)
        assert by_id[work] == got
    assert by_id[kept].bundle.deleted_at is None
    assert by_id[deleted].bundle.deleted_at is not None


async def test_a_count_is_the_length_of_the_same_list(
    maestro_server: MaestroUnderTest, source_client: MaestroClient
) -> None:
    # What a progress line needs at fleet scale: a number, not 150,000 listed bundles.
    for cluster in ("cluster-count-a", "cluster-count-b"):
        await source_client.create_consumer(cluster)
    a = [uuid.uuid4() for _ in range(3)]
    for work in a:
        await source_client.apply(
            "cluster-count-a", work, bundle_of(configmap("cm")), metadata={"labels": {"tier": "web"}}
        )
    await source_client.apply("cluster-count-b", uuid.uuid4(), bundle_of(configmap("cm")))
    await source_client.delete("cluster-count-a", a[0])
    for where in (
        queries.ResourceFilter(consumer="cluster-count-a"),
        queries.ResourceFilter(consumer="cluster-count-b"),
        queries.ResourceFilter(consumer="cluster-count-a", labels={"tier": "web"}),
        queries.ResourceFilter(consumer="cluster-count-b", labels={"tier": "web"}),
        queries.ResourceFilter(consumer="cluster-count-none"),
    ):
        listed, _ = await source_client.list(where)
        assert await source_client.count(where) == len(listed)
    assert await source_client.count(queries.ResourceFilter(consumer="cluster-count-a")) == 3, (
        "deleting counts"
    )
    result = await asyncio.to_thread(
        CliRunner().invoke,
        cli.app,
        [
            "maestro",
            "works",
            "count",
            "--consumer",
            "cluster-count-a",
            "--server",
            maestro_server.address,
            "--tls-dir",
            str(maestro_server.identities.issue(ADMIN)),
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "3"


async def test_a_list_without_specs_or_statuses_is_the_same_list_with_those_left_empty(
    maestro_server: MaestroUnderTest, source_client: MaestroClient
) -> None:
    # What the hub's controllers ask for each minute: everything but the specs (and the statuses,
    # whose sequences alone say which changed).
    await source_client.create_consumer("cluster-nospec")
    works = [uuid.uuid4() for _ in range(3)]
    for work in works:
        await source_client.apply("cluster-nospec", work, bundle_of(configmap("cm-nospec")))
    await send_status(maestro_server, (await source_client.get(works[0])).bundle, 7, APPLIED)

    async def reported() -> bool:
        return (await source_client.get(works[0])).status is not None

    await eventually(reported)
    where = queries.ResourceFilter(consumer="cluster-nospec")

    async def listed(**kwargs: bool) -> list[listing.BundleSummary]:
        return [
            item async for page in source_client.pages(where, page_size=2, **kwargs) for item in page.items
        ]

    full = await listed()
    assert len(full) == 3
    assert all(item.spec_json for item in full)
    assert sum(1 for item in full if item.status_json) == 1
    for kwargs, emptied in (
        ({"with_spec": False}, ("spec_json",)),
        ({"with_status": False}, ("status_json",)),
        ({"with_spec": False, "with_status": False}, ("spec_json", "status_json")),
    ):
        slim = await listed(**kwargs)
        assert len(slim) == 3, kwargs
        for whole, without in zip(full, slim, strict=True):
            for name in emptied:
                assert getattr(without, name) == b"", (kwargs, name)
                without = without._replace(**{name: getattr(whole, name)})
            assert without == whole, kwargs  # the status sequence, hash and version included


async def test_a_batch_publish_answers_each_event_on_its_own(maestro_server: MaestroUnderTest) -> None:
    async with maestro_server.client(batch_publish=True) as client:
        await client.create_consumer("cluster-1")
        ids = [uuid.uuid4() for _ in range(3)]
        outcomes = await asyncio.gather(
            client.apply("cluster-1", ids[0], bundle_of(configmap("a"))),
            client.apply("no-such-cluster", ids[1], bundle_of(configmap("b"))),
            client.apply("cluster-1", ids[2], bundle_of(configmap("c"))),
            return_exceptions=True,
        )
        assert outcomes[0] is None and outcomes[2] is None
        refused = outcomes[1]
        assert isinstance(refused, client_errors.NotFound)
        assert "no-such-cluster" in refused.details
        listed, _ = await client.list()
        assert sorted(str(r.bundle.id) for r in listed) == sorted([str(ids[0]), str(ids[2])])


async def test_large_works_published_at_once_all_fit_the_servers_message_limit(
    maestro_server: MaestroUnderTest,
) -> None:
    # Each bundle alone is well under the server's limit (a bundle and its envelope); together
    # they are not, so the client must not put them all in one PublishBatch.
    async with maestro_server.client(batch_publish=True) as client:
        await client.create_consumer("cluster-1")
        ids = [uuid.uuid4() for _ in range(12)]  # more than the client's calls in flight: they gather
        await asyncio.gather(
            *(client.apply("cluster-1", rid, bundle_of(configmap("big", "v" * 400_000))) for rid in ids)
        )
        assert await client.count() == 12


async def test_the_batched_status_watch_delivers_what_the_single_one_does(
    maestro_server: MaestroUnderTest, source_client: MaestroClient
) -> None:
    await source_client.create_consumer("cluster-1")
    ids = [uuid.uuid4() for _ in range(3)]
    for rid in ids:
        await source_client.apply("cluster-1", rid, bundle_of(configmap(f"cm-{rid.hex[:6]}")))
    for record in [(await source_client.get(rid)).bundle for rid in ids]:
        await send_status(maestro_server, record, 1, APPLIED)
    query = stubs.query_grpc.MaestroQueryStub(maestro_server.channel())
    request = stubs.query.WatchStatusRequest(source="test-source")

    async def single() -> list[tuple[str, str]]:
        got = []
        async for change in query.WatchStatus(request):
            if change.resource_id:
                got.append((change.resource_id, change.resume_token))
            if len(got) == 3:
                return got
        raise AssertionError("stream ended")

    async def batched() -> list[tuple[str, str]]:
        got = []
        async for batch in query.WatchStatusBatches(request):
            got += [(change.resource_id, change.resume_token) for change in batch.changes]
            if len(got) >= 3:
                return got
        raise AssertionError("stream ended")

    one_by_one = await asyncio.wait_for(single(), 20)
    assert sorted(rid for rid, _ in one_by_one) == sorted(str(rid) for rid in ids)
    assert await asyncio.wait_for(batched(), 20) == one_by_one
