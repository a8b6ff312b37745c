"""Lifecycle rules: plan_spec for create/update/delete, judge_status, confirms_deletion.

Cases: create starts at version 1 and emits; a retried identical create is a no-op; a different
create of an existing id, an update of a missing id, a stale version and a change to a deleting
bundle are refused; an update bumps the version only when the payload changed (metadata alone is
stored without an event); version 0 means latest; delete is soft, emits once, then is idempotent;
a bundle cannot move between consumers or sources; stale statuses, statuses for a version never
given out and sequences past the server's clock plus its margin are classified.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from maestro.api import bundles, errors, lifecycle
from tests.unit.maestro import fixtures as fx

A = bundles.SpecAction
Out = lifecycle.Outcome

PLANS = [
    ("create new", None, fx.request(A.CREATE), Out.CREATED, 1, True, True),
    ("create retried", fx.bundle(1), fx.request(A.CREATE), Out.UNCHANGED, 1, False, False),
    ("update changed, latest", fx.bundle(3), fx.request(A.UPDATE, 0, replicas=2), Out.UPDATED, 4, True, True),
    (
        "update changed, current",
        fx.bundle(3),
        fx.request(A.UPDATE, 3, replicas=2),
        Out.UPDATED,
        4,
        True,
        True,
    ),
    ("update same payload", fx.bundle(3), fx.request(A.UPDATE, 3), Out.UNCHANGED, 3, False, False),
    ("delete live", fx.bundle(2), fx.request(A.DELETE), Out.DELETING, 2, True, True),
    ("delete again", fx.bundle(2, deleted=True), fx.request(A.DELETE), Out.ALREADY_DELETING, 2, False, False),
    ("delete ignores version", fx.bundle(2), fx.request(A.DELETE, 9), Out.DELETING, 2, True, True),
]


@pytest.mark.parametrize(
    ("existing", "req", "outcome", "version", "store", "emit"),
    [p[1:] for p in PLANS],
    ids=[p[0] for p in PLANS],
)
def test_plan_spec(
    existing: bundles.ResourceBundle | None,
    req: bundles.SpecRequest,
    outcome: lifecycle.Outcome,
    version: int,
    store: bool,
    emit: bool,
) -> None:
    plan = lifecycle.plan_spec(existing, req, fx.NOW)
    assert (plan.outcome, plan.bundle.version, plan.store, plan.emit) == (outcome, version, store, emit)
    if outcome is Out.DELETING:
        assert plan.bundle.deleted_at == fx.NOW


def test_metadata_only_update_is_stored_without_an_event() -> None:
    req = dataclasses.replace(fx.request(A.UPDATE, 1), metadata={"name": "work1", "labels": {"a": "b"}})
    plan = lifecycle.plan_spec(fx.bundle(1), req, fx.NOW)
    assert (plan.outcome, plan.store, plan.emit, plan.bundle.version) == (Out.UNCHANGED, True, False, 1)
    assert plan.bundle.labels == {"a": "b"}


REFUSALS = [
    (
        "create differs from existing",
        fx.bundle(1),
        fx.request(A.CREATE, replicas=5),
        errors.AlreadyExists,
        "already",
    ),
    (
        "create while deleting",
        fx.bundle(1, deleted=True),
        fx.request(A.CREATE),
        errors.Conflict,
        "being deleted",
    ),
    ("update missing", None, fx.request(A.UPDATE), errors.NotFound, "not found"),
    ("update stale version", fx.bundle(3), fx.request(A.UPDATE, 2, replicas=2), errors.Conflict, "version 3"),
    ("update newer version", fx.bundle(3), fx.request(A.UPDATE, 4, replicas=2), errors.Conflict, "version 4"),
    (
        "update while deleting",
        fx.bundle(3, deleted=True),
        fx.request(A.UPDATE, 3),
        errors.Conflict,
        "deleted",
    ),
    ("delete missing", None, fx.request(A.DELETE), errors.NotFound, "not found"),
    ("other consumer", fx.bundle(1), fx.request(A.UPDATE, consumer="cluster2"), errors.Conflict, "consumer"),
    ("other source", fx.bundle(1), fx.request(A.DELETE, source="intruder"), errors.Conflict, "source"),
    (
        "create without payload",
        None,
        bundles.SpecRequest(A.CREATE, fx.RID, "cluster1", "hub"),
        errors.InvalidArgument,
        "ManifestBundle",
    ),
]


@pytest.mark.parametrize(
    ("existing", "req", "error", "match"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_plan_spec_refusals(
    existing: bundles.ResourceBundle | None, req: bundles.SpecRequest, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        lifecycle.plan_spec(existing, req, fx.NOW)


V = lifecycle.StatusVerdict
LIMIT = 1_000
INT64_MAX = (1 << 63) - 1
VERDICTS = [
    ("first status", 1, None, 1, 5, V.ACCEPT),
    ("newer sequence", 2, 5, 2, 6, V.ACCEPT),
    ("equal sequence", 2, 5, 2, 5, V.STALE_SEQUENCE),
    ("older sequence", 2, 5, 2, 4, V.STALE_SEQUENCE),
    ("older version", 2, 5, 1, 9, V.STALE_VERSION),
    ("older version first status", 2, None, 1, 9, V.STALE_VERSION),
    ("version never given out", 2, 5, 3, 9, V.UNKNOWN_VERSION),
    ("huge version", 2, 5, INT64_MAX, 9, V.UNKNOWN_VERSION),
    ("sequence at the limit", 2, 5, 2, LIMIT, V.ACCEPT),
    ("sequence past the limit", 2, 5, 2, LIMIT + 1, V.FUTURE_SEQUENCE),
    ("largest sequence", 2, None, 2, INT64_MAX, V.FUTURE_SEQUENCE),
    ("stored at the limit still holds", 2, LIMIT, 2, LIMIT - 1, V.STALE_SEQUENCE),
    ("stored past the limit holds nothing", 2, LIMIT + 1, 2, 6, V.ACCEPT),
    ("stored 2^63-1 holds nothing", 2, INT64_MAX, 2, 6, V.ACCEPT),
]


@pytest.mark.parametrize(
    ("current", "stored", "version", "seq", "want"), [v[1:] for v in VERDICTS], ids=[v[0] for v in VERDICTS]
)
def test_judge_status(
    current: int, stored: int | None, version: int, seq: int, want: lifecycle.StatusVerdict
) -> None:
    got = lifecycle.judge_status(
        current_version=current,
        stored_sequence=stored,
        report_version=version,
        report_sequence=seq,
        max_sequence=LIMIT,
    )
    assert got is want


NOW_NS = 1_795_000_000_000_000_000
AHEAD = timedelta(minutes=5)
AHEAD_NS = 300 * 1_000_000_000
SEQUENCES = [
    ("zero", 0, True),
    ("the past", NOW_NS - 1, True),
    ("now", NOW_NS, True),
    ("at the margin", NOW_NS + AHEAD_NS, True),
    ("one past the margin", NOW_NS + AHEAD_NS + 1, False),
    ("a year ahead", NOW_NS + 365 * 86400 * 1_000_000_000, False),
    ("2^63-1", INT64_MAX, False),
]


@pytest.mark.parametrize(("sequence", "accepted"), [s[1:] for s in SEQUENCES], ids=[s[0] for s in SEQUENCES])
def test_a_sequence_may_be_ahead_of_the_servers_clock_by_the_margin_only(
    sequence: int, accepted: bool
) -> None:
    assert lifecycle.sequence_limit(NOW_NS, AHEAD) == NOW_NS + AHEAD_NS
    if accepted:
        assert lifecycle.check_sequence(sequence, now_ns=NOW_NS, ahead=AHEAD) == sequence
        return
    with pytest.raises(errors.InvalidArgument) as caught:
        lifecycle.check_sequence(sequence, now_ns=NOW_NS, ahead=AHEAD)
    assert caught.value.field == "sequenceid"
    assert "ahead of the server's clock" in str(caught.value) and "NTP" in str(caught.value)


def test_the_sequence_limit_stays_an_int64() -> None:
    assert lifecycle.sequence_limit(INT64_MAX - 5, AHEAD) == INT64_MAX


@pytest.mark.parametrize(
    ("condition", "value", "want"),
    [("Deleted", "True", True), ("Deleted", "False", False), ("Applied", "True", False)],
    ids=["deleted", "not-deleted-yet", "applied"],
)
def test_confirms_deletion(condition: str, value: str, want: bool) -> None:
    assert lifecycle.confirms_deletion(fx.status(condition=condition, value=value)) is want
