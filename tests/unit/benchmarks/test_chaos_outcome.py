"""The chaos suite's exact-outcome checker on hand-made snapshots: exact, pending, violated."""

from __future__ import annotations

import dataclasses
import uuid

from benchmarks.chaos.outcome import (
    TOPICS_UNREAD,
    AppliedRecord,
    Intended,
    LiveObject,
    Snapshot,
    Stored,
    judge,
)

A, B = "worker-1", "worker-2"
KEPT = Intended(uuid.UUID(int=1), A, "cm-0000", revision=1, version=1)
UPDATED = Intended(uuid.UUID(int=2), B, "cm-0001", revision=2, version=2)
DELETED = Intended(uuid.UUID(int=3), A, "cm-0002", revision=1, version=1, deleted=True)
WORKS = [KEPT, UPDATED, DELETED]
SENT = {KEPT.id: [101], UPDATED.id: [201, 202], DELETED.id: [301, 302]}


def exact() -> Snapshot:
    """What the three works leave when all went right."""
    return Snapshot(
        objects={
            A: {KEPT.name: LiveObject("uid-a", str(KEPT.id), 1)},
            B: {UPDATED.name: LiveObject("uid-b", str(UPDATED.id), 2)},
        },
        records={
            A: [AppliedRecord(str(KEPT.id), 1, ((KEPT.name, "uid-a"),))],
            B: [AppliedRecord(str(UPDATED.id), 2, ((UPDATED.name, "uid-b"),))],
        },
        stored={KEPT.id: Stored(1, 1, True, 101), UPDATED.id: Stored(2, 2, True, 202)},
        sent=SENT,
        outbox=0,
    )


def test_the_right_objects_records_statuses_and_sequences_are_exact() -> None:
    verdict = judge(WORKS, exact())
    assert verdict.exact, verdict.summary()
    assert verdict.summary() == "exact"


def test_a_missing_object_record_or_status_is_pending_not_violated() -> None:
    snap = exact()
    snap.objects = {A: {}, B: snap.objects[B]}
    snap.records = {A: [], B: snap.records[B]}
    snap.stored = {UPDATED.id: snap.stored[UPDATED.id]}
    verdict = judge(WORKS, snap)
    assert not verdict.violations
    assert verdict.pending == [
        "cm-0000 is missing from worker-1",
        "cm-0000: applied records at [], expected one at 1",
        "cm-0000 is not listed by the query API",
    ]


def test_an_update_not_yet_applied_or_reported_is_pending() -> None:
    snap = exact()
    snap.objects = {**snap.objects, B: {UPDATED.name: LiveObject("uid-b", str(UPDATED.id), 1)}}
    snap.records = {**snap.records, B: [AppliedRecord(str(UPDATED.id), 1, ((UPDATED.name, "uid-b"),))]}
    snap.stored = {**snap.stored, UPDATED.id: Stored(2, 1, True, 201)}
    verdict = judge(WORKS, snap)
    assert not verdict.violations
    assert verdict.pending == [
        "cm-0001 is at revision 1, expected 2",
        "cm-0001: applied records at [1], expected one at 2",
        "cm-0001: status of version 1 (applied: True) stored, expected version 2 applied",
    ]


def test_a_deleted_work_still_present_anywhere_is_pending() -> None:
    snap = exact()
    snap.objects = {
        **snap.objects,
        A: {**snap.objects[A], DELETED.name: LiveObject("uid-d", str(DELETED.id), 1)},
    }
    snap.records = {**snap.records, A: [*snap.records[A], AppliedRecord(str(DELETED.id), 1, ())]}
    snap.stored = {**snap.stored, DELETED.id: Stored(1, 1, True, 302, deleting=True)}
    verdict = judge(WORKS, snap)
    assert not verdict.violations
    assert verdict.pending == [
        "cm-0002 (deleted) is still in worker-1",
        "cm-0002 (deleted) still has an applied record in worker-1",
        "cm-0002 (deleted) is still listed by the query API",
    ]


def test_status_topics_not_read_leave_the_verdict_pending() -> None:
    verdict = judge(WORKS, dataclasses.replace(exact(), sent=None))
    assert verdict.pending == [TOPICS_UNREAD] and not verdict.violations


def test_rows_left_in_the_outbox_are_pending() -> None:
    verdict = judge(WORKS, dataclasses.replace(exact(), outbox=3))
    assert verdict.pending == ["3 rows left in the outbox"] and not verdict.violations


def test_a_record_owning_another_object_than_the_live_one_is_pending() -> None:
    snap = exact()
    snap.records = {**snap.records, A: [AppliedRecord(str(KEPT.id), 1, ((KEPT.name, "uid-old"),))]}
    assert judge(WORKS, snap).pending == [
        "cm-0000: its record owns [('cm-0000', 'uid-old')], expected the live object (uid uid-a)"
    ]


def test_duplicates_and_strays_are_violations() -> None:
    snap = exact()
    snap.objects = {
        A: {
            **snap.objects[A],
            UPDATED.name: LiveObject("uid-x", str(UPDATED.id), 2),
            "cm-9999": LiveObject("u", "w", 1),
        },
        B: snap.objects[B],
    }
    snap.records = {**snap.records, A: [*snap.records[A], snap.records[A][0]]}
    snap.stored = {**snap.stored, uuid.UUID(int=9): Stored(1, 1, True, 909)}
    snap.sent = {**SENT, uuid.UUID(int=9): [909]}
    verdict = judge(WORKS, snap)
    assert verdict.violations == [
        "worker-1: ConfigMap cm-9999 belongs to no work of the rollout",
        f"worker-1: 2 applied records of {KEPT.id} at version 1",
        f"the query API lists {uuid.UUID(int=9)}, which the rollout never created",
        "cm-0001 of worker-2 is also in worker-1",
    ]


def test_a_version_beyond_the_intended_one_is_a_violation() -> None:
    snap = exact()
    snap.records = {**snap.records, A: [AppliedRecord(str(KEPT.id), 2, ((KEPT.name, "uid-a"),))]}
    snap.stored = {**snap.stored, KEPT.id: Stored(2, 2, True, 101)}
    assert judge(WORKS, snap).violations == [
        "cm-0000: applied records at [2], beyond version 1",
        "cm-0000 is at version 2, expected 1",
    ]


def test_an_object_holding_another_works_data_is_a_violation() -> None:
    snap = exact()
    snap.objects = {**snap.objects, A: {KEPT.name: LiveObject("uid-a", str(UPDATED.id), 1)}}
    assert judge(WORKS, snap).violations == [f"worker-1: cm-0000 holds work {UPDATED.id}, not {KEPT.id}"]


def test_a_status_sequence_sent_twice_or_out_of_order_is_a_violation() -> None:
    snap = exact()
    snap.sent = {**SENT, KEPT.id: [101, 202], DELETED.id: [302, 301]}
    verdict = judge(WORKS, snap)
    assert verdict.violations == [
        "status sequence ids sent more than once: {202: 2}",
        "cm-0002: status sequence ids sent out of order: [302, 301]",
    ]


def test_one_sequence_stored_for_two_bundles_is_a_violation() -> None:
    snap = exact()
    snap.stored = {**snap.stored, UPDATED.id: Stored(2, 2, True, 101)}
    snap.sent = {KEPT.id: [101], UPDATED.id: [201]}
    verdict = judge(WORKS, snap)
    assert verdict.violations == ["status sequence ids stored for more than one bundle: {101: 2}"]
    assert verdict.pending == ["cm-0001: stored status sequence 101 not seen sent"]


def test_the_summary_names_each_finding_and_counts_the_rest() -> None:
    works = [Intended(uuid.UUID(int=i), A, f"cm-{i:04d}", 1, 1) for i in range(20)]
    empty = Snapshot(objects={A: {}}, records={A: []}, stored={}, sent={}, outbox=0)
    summary = judge(works, empty).summary(limit=4)
    assert summary.startswith("pending (60):\n  cm-0000 is missing from worker-1\n")
    assert summary.endswith("... and 56 more")
