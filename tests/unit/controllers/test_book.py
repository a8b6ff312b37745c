"""The status book shared by the two controllers.

Cases: no rollup before the propagation controller's first pass; facts and Application statuses
mark an ApplicationSet dirty only when they change; the rollup keeps timestamps while nothing
changes (so the batcher can skip it), starting from the status read from the hub; dropping an
ApplicationSet forgets it.
"""

from __future__ import annotations

from controllers.status import book

KEY = ("apps", "guestbook")
SYNCED = {"sync": {"status": "Synced"}, "health": {"status": "Healthy"}}


def test_no_rollup_without_facts() -> None:
    ledger = book.StatusBook()
    ledger.set_app_status(KEY, "c1-guestbook", SYNCED)
    assert ledger.rollup(KEY, now="t1") is None


def test_only_changes_make_dirty() -> None:
    ledger = book.StatusBook()
    facts = book.Facts(apps=(book.AppFact("c1-guestbook"),))
    ledger.set_facts(KEY, facts)
    assert ledger.take_dirty() == [KEY]
    ledger.set_facts(KEY, facts)
    assert ledger.set_app_status(KEY, "c1-guestbook", SYNCED)
    assert not ledger.set_app_status(KEY, "c1-guestbook", SYNCED)
    assert ledger.take_dirty() == [KEY]
    assert ledger.take_dirty() == []


def test_rollup_keeps_timestamps_while_nothing_changes() -> None:
    ledger = book.StatusBook()
    unchanged = {
        "type": "ErrorOccurred",
        "status": "False",
        "reason": "ApplicationSetUpToDate",
        "message": "All applications have been generated successfully",
        "lastTransitionTime": "t0",
    }
    first = {"conditions": [unchanged]}
    ledger.set_facts(KEY, book.Facts(apps=(book.AppFact("c1-guestbook"),)), current=first)
    ledger.set_app_status(KEY, "c1-guestbook", SYNCED)
    one = ledger.rollup(KEY, now="t1")
    two = ledger.rollup(KEY, now="t2")
    assert one is not None and two is not None
    assert one.status == two.status
    assert one.status["applicationStatus"][0]["status"] == "Healthy"
    times = {c["type"]: c["lastTransitionTime"] for c in one.status["conditions"]}
    assert times["ErrorOccurred"] == "t0" and times["ResourcesUpToDate"] == "t1"


def test_drop_forgets_everything() -> None:
    ledger = book.StatusBook()
    ledger.set_facts(KEY, book.Facts())
    ledger.set_app_status(KEY, "c1-guestbook", SYNCED)
    ledger.drop(KEY)
    assert ledger.facts(KEY) is None and ledger.app_status(KEY, "c1-guestbook") is None
    assert ledger.take_dirty() == []
