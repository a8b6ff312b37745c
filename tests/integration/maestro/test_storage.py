"""Maestro storage against a real PostgreSQL.

Cases: migrating twice (and concurrently) is a no-op; consumers get distinct placements, reuse
freed ones, and cannot be deleted while they have bundles; every accepted spec change writes
exactly one outbox row in its transaction and a refused one (stale version, unknown consumer,
duplicate create) writes nothing; concurrent relays never claim the same row and never share a
consumer; acks release leases and expired leases are reclaimed; batch status ingest drops stale
sequences and versions in SQL and feeds a resumable change feed, tombstones included, and stores a
report only for a bundle of the consumer whose slot it is bound to (one for another consumer's
bundle is returned as foreign and cannot shadow the owner's report in the same batch); paging
returns every row exactly once under each filter; listing 6,000 bundles is timed (printed).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
import pytest

from maestro.api import bundles, errors, lifecycle, queries, resync
from maestro.server.notifier import Notifier
from maestro.storage import migrations, pool, store

pytestmark = pytest.mark.integration


def app_manifest(name: str, revision: str = "HEAD") -> dict[str, object]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd"},
        "spec": {
            "project": "default",
            "source": {
                "repoURL": "https://example.invalid/argocd-example-apps.git",
                "targetRevision": revision,
                "path": "guestbook",
            },
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "guestbook"},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
        },
    }


def create_request(
    consumer: str,
    *,
    rid: uuid.UUID | None = None,
    source: str = "hub",
    labels: dict[str, str] | None = None,
    revision: str = "HEAD",
) -> bundles.SpecRequest:
    rid = rid or uuid.uuid4()
    return bundles.SpecRequest(
        action=bundles.SpecAction.CREATE,
        resource_id=rid,
        consumer=consumer,
        source=source,
        spec=bundles.ManifestBundle(manifests=[app_manifest(f"app-{rid.hex[:8]}", revision)]),
        metadata={"name": f"work-{rid.hex[:8]}", "labels": labels or {}},
    )


def report(
    rid: uuid.UUID, consumer: str, *, version: int, seq: int, applied: str = "True"
) -> bundles.StatusReport:
    return bundles.StatusReport(
        resource_id=rid,
        consumer=consumer,
        resource_version=version,
        status=bundles.BundleStatus(
            conditions=[{"type": "Applied", "status": applied, "reason": "AppliedManifestComplete"}],
            sequence_id=seq,
        ),
        original_source="hub",
    )


async def outbox_rows(dsn: str) -> list[tuple[uuid.UUID, str]]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute("SELECT resource_id, event_type FROM outbox ORDER BY id")
        return [(r[0], r[1]) for r in await cur.fetchall()]


# Migrations.


async def test_migrate_twice_is_a_no_op(pg_dsn: str) -> None:
    assert await migrations.migrate(pg_dsn) == [m.version for m in migrations.available()]
    assert await migrations.migrate(pg_dsn) == []


async def test_concurrent_migrations_apply_once(pg_dsn: str) -> None:
    first, second = await asyncio.gather(migrations.migrate(pg_dsn), migrations.migrate(pg_dsn))
    assert sorted(first + second) == [m.version for m in migrations.available()]


# Consumers.


async def test_consumers_get_distinct_placements_never_reused(maestro_store: store.Store) -> None:
    made = await asyncio.gather(*(maestro_store.create_consumer(f"cluster-{i}") for i in range(5)))
    placements = {c.placement for c in made}
    assert len(placements) == 5
    # a topic of its own each, for its spec events and for its status reports
    assert {(c.spec_placement.topic, c.spec_placement.partition, c.status_topic) for c in made} == {
        (f"fleetplane.maestro.spec.{c.slot}", 0, f"fleetplane.maestro.status.{c.slot}") for c in made
    }
    await maestro_store.delete_consumer("cluster-4")
    again = await maestro_store.create_consumer("cluster-new", {"env": "dev"})
    assert again.placement not in placements
    with pytest.raises(errors.AlreadyExists):
        await maestro_store.create_consumer("cluster-new")
    racing = await asyncio.gather(
        *(maestro_store.create_consumer("twin") for _ in range(3)), return_exceptions=True
    )
    assert sum(isinstance(r, errors.AlreadyExists) for r in racing) == 2


async def test_consumer_labels_list_and_filter(maestro_store: store.Store) -> None:
    for i in range(7):
        await maestro_store.create_consumer(f"c{i}", {"env": "prod" if i % 2 else "dev"})
    updated = await maestro_store.update_consumer_labels("c0", {"env": "prod", "tier": "1"})
    assert updated.labels == {"env": "prod", "tier": "1"}
    names: list[str] = []
    token = ""
    while True:
        page = await maestro_store.list_consumers(
            queries.ConsumerFilter({"env": "prod"}), page_size=2, page_token=token
        )
        names += [c.name for c in page.items]
        token = page.next_page_token
        if not token:
            break
    assert names == ["c0", "c1", "c3", "c5"]
    with pytest.raises(errors.NotFound):
        await maestro_store.update_consumer_labels("missing", {})


async def test_consumer_with_bundles_cannot_be_deleted(maestro_store: store.Store) -> None:
    await maestro_store.create_consumer("busy")
    for _ in range(3):
        await maestro_store.create_resource(create_request("busy"))
    with pytest.raises(errors.Conflict, match="3 resource bundle"):
        await maestro_store.delete_consumer("busy")
    with pytest.raises(errors.NotFound):
        await maestro_store.delete_consumer("never-made")


# Spec changes and the outbox.


async def test_every_accepted_change_writes_one_outbox_row(
    maestro_store: store.Store, migrated_dsn: str
) -> None:
    await maestro_store.create_consumer("c1")
    request = create_request("c1")
    rid = request.resource_id

    created = await maestro_store.create_resource(request)
    assert (created.outcome, created.bundle.version) == (lifecycle.Outcome.CREATED, 1)
    retried = await maestro_store.create_resource(request)
    assert retried.outcome is lifecycle.Outcome.UNCHANGED

    changed = create_request("c1", rid=rid, revision="v2")
    updated = await maestro_store.update_resource(changed)
    assert (updated.outcome, updated.bundle.version) == (lifecycle.Outcome.UPDATED, 2)
    same = await maestro_store.update_resource(dataclass_version(changed, 2))
    assert same.outcome is lifecycle.Outcome.UNCHANGED

    deleting = await maestro_store.delete_resource(changed)
    assert deleting.outcome is lifecycle.Outcome.DELETING and deleting.bundle.deleting

    rows = await outbox_rows(migrated_dsn)
    assert [t.rsplit(".", 1)[1] for _, t in rows] == ["create_request", "update_request", "delete_request"]
    assert {r for r, _ in rows} == {rid}
    entries = await maestro_store.claim_outbox(10)
    assert [e.event().extensions["resourceversion"] for e in entries] == [1, 2, 2]
    assert entries[2].event().extensions.get("deletiontimestamp")


def dataclass_version(request: bundles.SpecRequest, version: int) -> bundles.SpecRequest:
    return dataclasses.replace(request, action=bundles.SpecAction.UPDATE, version=version)


async def test_refused_changes_write_nothing(maestro_store: store.Store, migrated_dsn: str) -> None:
    await maestro_store.create_consumer("c1")
    request = create_request("c1")
    await maestro_store.create_resource(request)
    await maestro_store.update_resource(
        dataclass_version(create_request("c1", rid=request.resource_id, revision="v2"), 1)
    )
    before = await outbox_rows(migrated_dsn)

    with pytest.raises(errors.Conflict, match="version 2"):
        await maestro_store.update_resource(
            dataclass_version(create_request("c1", rid=request.resource_id, revision="v3"), 1)
        )
    with pytest.raises(errors.NotFound, match="consumer"):
        await maestro_store.create_resource(create_request("no-such-cluster"))
    with pytest.raises(errors.AlreadyExists):
        await maestro_store.create_resource(create_request("c1", rid=request.resource_id, revision="other"))
    with pytest.raises(errors.NotFound):
        await maestro_store.update_resource(dataclass_version(create_request("c1"), 0))

    assert await outbox_rows(migrated_dsn) == before
    stored = await maestro_store.get_resource(request.resource_id)
    assert stored.bundle.version == 2
    assert stored.bundle.manifests[0]["spec"]["source"]["targetRevision"] == "v2"
    page = await maestro_store.list_resources()
    assert len(page.items) == 1


async def test_concurrent_creates_of_one_id_store_one_row(
    maestro_store: store.Store, migrated_dsn: str
) -> None:
    await maestro_store.create_consumer("c1")
    request = create_request("c1")
    results = await asyncio.gather(*(maestro_store.create_resource(request) for _ in range(4)))
    assert sorted(r.outcome for r in results).count(lifecycle.Outcome.CREATED) == 1
    assert len(await outbox_rows(migrated_dsn)) == 1


async def test_relays_hear_of_a_spec_change_once_it_is_committed(
    maestro_store: store.Store, migrated_dsn: str
) -> None:
    await maestro_store.create_consumer("c1")
    async with await psycopg.AsyncConnection.connect(migrated_dsn, autocommit=True) as listener:
        await listener.execute(f"LISTEN {store.OUTBOX_CHANNEL}")
        await maestro_store.create_resource(create_request("c1"))
        async with asyncio.timeout(30):
            note = await anext(listener.notifies())
        assert note.channel == store.OUTBOX_CHANNEL
        # What it heard of is there to claim.
        assert len(await maestro_store.claim_outbox(10)) == 1


async def test_a_relay_that_looked_for_work_hears_of_a_commit_made_meanwhile(
    maestro_store: store.Store, migrated_dsn: str
) -> None:
    await maestro_store.create_consumer("c1")
    notifier = Notifier(migrated_dsn, [store.OUTBOX_CHANNEL])
    await notifier.start()
    try:
        heard = notifier.heard(store.OUTBOX_CHANNEL)
        assert await maestro_store.claim_outbox(10) == []  # nothing yet
        await maestro_store.create_resource(create_request("c1"))  # committed after that claim
        async with asyncio.timeout(30):
            # not waiting on the notifier here: the point is a ring heard while nobody waits
            while notifier.heard(store.OUTBOX_CHANNEL) == heard:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        # Its ring came while the relay was not waiting: the wait returns at once, not after 600 s.
        async with asyncio.timeout(30):
            await notifier.wait(store.OUTBOX_CHANNEL, 600.0, heard=heard)
        assert len(await maestro_store.claim_outbox(10)) == 1
    finally:
        await notifier.stop()


async def test_concurrent_claims_never_share_a_row_or_a_consumer(migrated_dsn: str) -> None:
    pools = [await pool.open_pool(migrated_dsn, max_size=2) for _ in range(2)]
    try:
        relays = [store.Store(p) for p in pools]
        writer = relays[0]
        for c in range(6):
            await writer.create_consumer(f"c{c}")
        for i in range(60):
            await writer.create_resource(create_request(f"c{i % 6}"))

        seen: list[int] = []
        by_consumer: dict[str, set[str]] = {}

        async def relay(s: store.Store) -> None:
            while True:
                entries = await s.claim_outbox(7)
                if not entries:
                    if await s.pending_outbox() == 0:
                        return
                    await asyncio.sleep(0.01)
                    continue
                for e in entries:
                    by_consumer.setdefault(e.consumer, set()).add(s.owner)
                seen.extend(e.id for e in entries)
                await asyncio.sleep(0.005)  # "publishing"
                await s.ack_outbox([e.id for e in entries])

        first_a, first_b = await asyncio.gather(relays[0].claim_outbox(100), relays[1].claim_outbox(100))
        assert not {e.id for e in first_a} & {e.id for e in first_b}
        assert not {e.consumer for e in first_a} & {e.consumer for e in first_b}
        await relays[0].release_outbox()
        await relays[1].release_outbox()

        await asyncio.wait_for(asyncio.gather(relay(relays[0]), relay(relays[1])), timeout=60)
        assert len(seen) == len(set(seen)) == 60
        assert await writer.pending_outbox() == 0
    finally:
        for p in pools:
            await p.close()


async def test_claims_come_in_order_and_expired_leases_are_reclaimed(migrated_dsn: str) -> None:
    pools = [await pool.open_pool(migrated_dsn, max_size=2) for _ in range(2)]
    try:
        a, b = store.Store(pools[0]), store.Store(pools[1])
        await a.create_consumer("c1")
        for _ in range(5):
            await a.create_resource(create_request("c1"))
        claimed = await a.claim_outbox(3, lease=timedelta(milliseconds=50))
        assert [e.id for e in claimed] == sorted(e.id for e in claimed) and len(claimed) == 3
        assert claimed[0].topic and claimed[0].partition >= 0
        assert await b.claim_outbox(10) == []  # c1 is leased to a
        await asyncio.sleep(0.1)
        again = await b.claim_outbox(10)  # a's lease ran out: b publishes from the start again
        assert [e.id for e in again][:3] == [e.id for e in claimed] and len(again) == 5
        await b.ack_outbox([e.id for e in again])
        assert await a.pending_outbox() == 0
    finally:
        for p in pools:
            await p.close()


# Statuses.


async def test_batch_ingest_drops_stale_reports(maestro_store: store.Store) -> None:
    await maestro_store.create_consumer("c1")
    one, two = create_request("c1"), create_request("c1")
    for r in (one, two):
        await maestro_store.create_resource(r)
    await maestro_store.update_resource(
        dataclass_version(create_request("c1", rid=two.resource_id, revision="v2"), 1)
    )

    first = await maestro_store.ingest_statuses([report(one.resource_id, "c1", version=1, seq=10)])
    assert [s.report.status.sequence_id for s in first.stored] == [10] and not first.dropped

    batch = [
        report(one.resource_id, "c1", version=1, seq=10),  # equal sequence: duplicate
        report(one.resource_id, "c1", version=1, seq=9),  # older sequence
        report(two.resource_id, "c1", version=1, seq=50),  # older spec version (two is at 2)
        report(uuid.uuid4(), "c1", version=1, seq=1),  # unknown bundle
        report(two.resource_id, "c1", version=2, seq=51),  # stored
        report(two.resource_id, "c1", version=2, seq=52, applied="False"),  # supersedes 51 in-batch
    ]
    result = await maestro_store.ingest_statuses(batch)
    assert [(s.report.resource_id, s.report.status.sequence_id) for s in result.stored] == [
        (two.resource_id, 52)
    ]
    assert len(result.dropped) == 5
    assert result.stored[0].rev > first.stored[0].rev

    record = await maestro_store.get_resource(two.resource_id)
    assert record.status is not None and record.status.sequence_id == 52
    assert record.status.conditions[0]["status"] == "False"
    assert record.status_version == 2 and len(record.status_hash) == 64


async def test_a_report_counts_only_for_a_bundle_of_the_consumer_it_is_bound_to(
    maestro_store: store.Store,
) -> None:
    a = await maestro_store.create_consumer("c-a")
    b = await maestro_store.create_consumer("c-b")
    mine, theirs = create_request("c-a"), create_request("c-b")
    for r in (mine, theirs):
        await maestro_store.create_resource(r)
    batch = [
        # read from a's status topic: its own bundle, then b's (claiming to be b, a higher sequence)
        report(mine.resource_id, "c-a", version=1, seq=5),
        report(theirs.resource_id, "c-b", version=1, seq=7),
        # read from b's: b's own, a lower sequence than the forged one
        report(theirs.resource_id, "c-b", version=1, seq=6),
        # read from a topic whose consumer is gone (no slot holds it)
        report(mine.resource_id, "c-a", version=1, seq=9),
    ]
    result = await maestro_store.ingest_statuses(batch, [a.slot, a.slot, b.slot, 10_000])
    assert [(f.report.status.sequence_id, f.owner) for f in result.foreign] == [(7, "c-b"), (9, "c-a")]
    # the forged report did not shadow b's own in the batch
    assert sorted(s.report.status.sequence_id for s in result.stored) == [5, 6]
    assert not result.dropped
    stored = await maestro_store.get_resource(theirs.resource_id)
    assert stored.status is not None and stored.status.sequence_id == 6


async def test_status_changes_resume_after_a_token_and_report_deletions(maestro_store: store.Store) -> None:
    await maestro_store.create_consumer("c1")
    await maestro_store.create_consumer("c2")
    reqs = [create_request("c1"), create_request("c2"), create_request("c1")]
    for r in reqs:
        await maestro_store.create_resource(r)
    for seq, r in enumerate(reqs, start=1):
        await maestro_store.ingest_statuses([report(r.resource_id, r.consumer, version=1, seq=seq)])

    everything = await maestro_store.status_changes_since("")
    assert [c.record.bundle.id for c in everything] == [r.resource_id for r in reqs]
    # a change carries the status, not the spec (its readers stream statuses)
    assert all(c.record.status is not None and c.record.bundle.manifests == [] for c in everything)
    only_c1 = await maestro_store.status_changes_since("", queries.ResourceFilter(consumer="c1"))
    assert [c.record.bundle.id for c in only_c1] == [reqs[0].resource_id, reqs[2].resource_id]
    token = queries.resume_token(everything[0].rev)
    assert [c.record.bundle.id for c in await maestro_store.status_changes_since(token)] == [
        reqs[1].resource_id,
        reqs[2].resource_id,
    ]
    last = queries.resume_token(everything[-1].rev)
    assert await maestro_store.current_status_token() == last
    assert await maestro_store.status_changes_since(last) == []

    # The agent confirms a deletion: the row goes, the watch reports it as deleted.
    await maestro_store.delete_resource(reqs[0])
    assert await maestro_store.hard_delete([reqs[1].resource_id]) == []  # not deleting: left alone
    deleted = bundles.BundleStatus(
        conditions=[{"type": "Deleted", "status": "True", "reason": "ManifestsDeleted"}], sequence_id=100
    )
    ingest = await maestro_store.ingest_statuses(
        [dataclass_status(report(reqs[0].resource_id, "c1", version=1, seq=100), deleted)]
    )
    assert lifecycle.confirms_deletion(ingest.stored[0].report.status)
    tombstones = await maestro_store.hard_delete([reqs[0].resource_id])
    assert [t.deleted for t in tombstones] == [True]
    tail = await maestro_store.status_changes_since(last)
    # The Deleted status and the removal collapse into the tombstone: the watch shows the final state.
    assert [(c.record.bundle.id, c.deleted) for c in tail] == [(reqs[0].resource_id, True)]
    assert tail[-1].record.status is not None and tail[-1].record.status.sequence_id == 100
    with pytest.raises(errors.NotFound):
        await maestro_store.get_resource(reqs[0].resource_id)


def dataclass_status(r: bundles.StatusReport, status: bundles.BundleStatus) -> bundles.StatusReport:
    return dataclasses.replace(r, status=status)


async def test_ingest_notifies_watchers(maestro_store: store.Store, migrated_dsn: str) -> None:
    await maestro_store.create_consumer("c1")
    r = create_request("c1")
    await maestro_store.create_resource(r)
    async with await psycopg.AsyncConnection.connect(migrated_dsn, autocommit=True) as listener:
        await listener.execute(f"LISTEN {store.STATUS_CHANNEL}")
        await maestro_store.ingest_statuses([report(r.resource_id, "c1", version=1, seq=1)])
        note = await asyncio.wait_for(anext(listener.notifies()), timeout=5)
        assert note.channel == store.STATUS_CHANNEL


# Resync and deletion bookkeeping.


async def test_resync_inputs_and_expired_deletions(maestro_store: store.Store) -> None:
    await maestro_store.create_consumer("c1")
    keep, gone = create_request("c1"), create_request("c1")
    for r in (keep, gone):
        await maestro_store.create_resource(r)
    past = datetime.now(UTC) - timedelta(hours=2)
    await maestro_store.delete_resource(gone, now=past)
    leftover = uuid.uuid4()

    rows = await maestro_store.resources_for_resync("c1")
    answer = resync.agent_answer(rows, {keep.resource_id: 1, leftover: 3})
    kinds = {item.resource_id: item.kind for item in answer}
    assert kinds == {
        gone.resource_id: resync.AgentResyncKind.DELETE,
        leftover: resync.AgentResyncKind.DELETE_UNKNOWN,
    }

    expired = await maestro_store.expired_deletions(timedelta(hours=1))
    assert [b.id for b in expired] == [gone.resource_id]
    assert await maestro_store.expired_deletions(timedelta(hours=3)) == []

    await maestro_store.ingest_statuses([report(keep.resource_id, "c1", version=1, seq=1)])
    records = await maestro_store.records_for_source("hub")
    assert [r.bundle.id for r in resync.source_answer(records, {})] == [keep.resource_id]
    assert resync.source_answer(records, {keep.resource_id: records[0].status_hash}) == []


# Listing.


async def test_paging_returns_every_row_exactly_once(maestro_store: store.Store) -> None:
    for c in ("c1", "c2"):
        await maestro_store.create_consumer(c)
    made: dict[uuid.UUID, bundles.SpecRequest] = {}
    for i in range(57):
        r = create_request(
            "c1" if i % 3 else "c2", source="hub" if i % 2 else "other", labels={"app": f"a{i % 4}"}
        )
        made[r.resource_id] = r
        await maestro_store.create_resource(r)

    cases = [
        (queries.ResourceFilter(), lambda r: True),
        (queries.ResourceFilter(consumer="c1"), lambda r: r.consumer == "c1"),
        (queries.ResourceFilter(source="other"), lambda r: r.source == "other"),
        (
            queries.ResourceFilter(consumer="c2", labels={"app": "a1"}),
            lambda r: r.consumer == "c2" and r.metadata["labels"]["app"] == "a1",
        ),
    ]
    for where, wanted in cases:
        for size in (1, 5, 500):
            seen: list[uuid.UUID] = []
            token = ""
            while True:
                page = await maestro_store.list_resources(where, page_size=size, page_token=token)
                seen += [rec.bundle.id for rec in page.items]
                token = page.next_page_token
                if not token:
                    break
            assert len(seen) == len(set(seen)), (where, size)
            assert set(seen) == {rid for rid, r in made.items() if wanted(r)}, (where, size)
    with pytest.raises(errors.InvalidArgument, match="page_token"):
        await maestro_store.list_resources(page_token="garbage")


async def test_listing_6000_bundles_is_timed(maestro_store: store.Store, migrated_dsn: str) -> None:
    consumers = [f"cluster-{i}" for i in range(10)]
    for c in consumers:
        await maestro_store.create_consumer(c)
    now = datetime.now(UTC)
    # Seeded directly: 6,000 separate create transactions would time the writes, not the list.
    copy_sql = (
        "COPY resources (id, consumer, source, version, spec, metadata, created_at, updated_at) FROM STDIN"
    )
    async with await psycopg.AsyncConnection.connect(migrated_dsn) as conn:
        async with conn.cursor() as cur, cur.copy(copy_sql) as copy:
            for i in range(6000):
                rid = uuid.uuid4()
                spec = orjson.dumps({"manifests": [app_manifest(f"guestbook-{i}")]}).decode()
                meta = orjson.dumps({"name": f"work-{i}", "labels": {"app": "guestbook"}}).decode()
                await copy.write_row((rid, consumers[i % 10], "hub", 1, spec, meta, now, now))
        await conn.commit()

    for attempt in ("cold", "warm"):
        started = time.perf_counter()
        count, token = 0, ""
        while True:
            page = await maestro_store.list_resources(page_token=token)
            count += len(page.items)
            token = page.next_page_token
            if not token:
                break
        elapsed = time.perf_counter() - started
        pages = queries.DEFAULT_PAGE_SIZE
        print(f"\nlisted {count} bundles in {elapsed * 1000:.0f} ms ({attempt}, pages of {pages})")
        assert count == 6000


async def test_a_batch_commits_the_good_and_refuses_the_bad(
    maestro_store: store.Store, migrated_dsn: str
) -> None:
    """Group commit: one refused request (unknown consumer, stale version) takes nothing else down,
    and a create followed by an update of the same bundle in one batch ends at version 2."""
    await maestro_store.create_consumer("c1")
    good, updated = create_request("c1"), create_request("c1")
    changed = dataclasses.replace(
        updated,
        action=bundles.SpecAction.UPDATE,
        version=1,
        spec=bundles.ManifestBundle(manifests=[app_manifest("changed", "v2")]),
    )
    stale = dataclasses.replace(changed, version=7)
    results = await maestro_store.apply_specs([good, create_request("nobody"), updated, changed, stale])
    assert [type(r).__name__ for r in results] == [
        "SpecResult",
        "NotFound",
        "SpecResult",
        "SpecResult",
        "Conflict",
    ]
    assert (await maestro_store.get_resource(updated.resource_id)).bundle.version == 2
    assert len(await outbox_rows(migrated_dsn)) == 3
