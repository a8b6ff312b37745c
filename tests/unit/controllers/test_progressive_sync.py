"""RollingSync passes with Argo CD's rules: Waiting -> Pending -> Progressing -> Healthy, step by step.

Cases: after a change no step moves before the grace period and every Application reconciled since;
a two-step rollout walked pass by pass (new Applications wait, step 1 is asked to sync, Progressing
once the sync started, Healthy once Synced and Healthy, then step 2; the RolloutProgressing step
follows); a step-1 Application that never becomes Healthy holds step 2 forever; maxUpdate lets only
so many of a step be Pending or Progressing; an Application already Synced and Healthy skips the
sync; a spec change sends it back to Waiting, and a stale Synced report from before the change does
not count; the first revision a cluster reports is no change; Pending again while its work's
operation has not started waits for that operation; a sync operation stays on its work while the
Application rolls on and goes with the next spec change; an Application no step selects waits in
step -1; InvalidRolloutConfig names Applications several steps select, else empty steps; entries
survive the hub (``to_json``/``from_json``); the sync operation carries the Application's retry,
sync options and prune, pinned to the revisions let through; invariants over random fleets (every
Application made Pending is asked to sync, no step starts before the earlier ones are Healthy, none
of no step starts).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from controllers.propagation import progressive_sync as ps
from controllers.propagation import rollout

T0 = datetime.datetime(2026, 12, 6, 2, 0, 0, tzinfo=datetime.UTC)


def at(seconds: int) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def stamp(seconds: int) -> str:
    return ps.format_time(at(seconds))


def strategy(max_update: Any = None) -> rollout.Strategy:
    step: dict[str, Any] = {"matchExpressions": [{"key": "env", "operator": "In", "values": ["dev"]}]}
    prod: dict[str, Any] = {"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]}
    if max_update is not None:
        step["maxUpdate"] = prod["maxUpdate"] = max_update
    rolling = {"type": "RollingSync", "rollingSync": {"steps": [step, prod]}}
    return rollout.parse_strategy({"strategy": rolling})


def app(
    name: str,
    env: str = "dev",
    *,
    sync: str = "OutOfSync",
    health: str = "Missing",
    exists: bool = True,
    reported: bool = True,
    spec_changed: bool = False,
    started: int | None = None,
    phase: str = "Succeeded",
    reconciled: int | None = None,
    token: str | None = None,
    revision: str = "abc",
) -> ps.Observed:
    status: dict[str, Any] = {
        "sync": {"status": sync, "revision": revision},
        "health": {"status": health},
    }
    if started is not None:
        status["operationState"] = {"phase": phase, "startedAt": stamp(started)}
    if reconciled is not None:
        status["reconciledAt"] = stamp(reconciled)
    return ps.Observed(name, {"env": env}, exists, spec_changed, reported, status, token)


class Fleet:
    """Passes over one ApplicationSet, carrying the entries from pass to pass as the controller does."""

    def __init__(self, strat: rollout.Strategy | None = None) -> None:
        self.strategy = strat or strategy()
        self.entries: dict[str, ps.Entry] = {}
        self.decision = ps.Decision((), {}, {}, None)

    def run(self, seconds: int, *observed: ps.Observed) -> Mapping[str, str]:
        self.decision = ps.decide(self.strategy, observed, self.entries, at(seconds))
        self.entries = {e.application: e for e in self.decision.entries}
        return {e.application: e.status for e in self.decision.entries}


def test_two_steps_roll_out_one_after_the_other() -> None:
    fleet = Fleet()
    assert fleet.run(0, app("d", exists=False), app("p", "prod", exists=False)) == {}
    assert fleet.decision.tokens == {} and fleet.decision.progressing_step is None

    # pass 2: both exist; step 1 is asked to sync, step 2 waits
    assert fleet.run(5, app("d"), app("p", "prod")) == {"d": "Pending", "p": "Waiting"}
    assert fleet.decision.tokens == {"d": stamp(5)}
    assert fleet.decision.progressing_step == 1
    assert fleet.entries["p"].message == "No Application status found, defaulting status to Waiting"
    assert fleet.entries["p"].step == "2"

    # the sync has not started yet: still Pending, the same operation (no second write)
    assert fleet.run(8, app("d", token=stamp(5)), app("p", "prod"))["d"] == "Pending"
    assert fleet.decision.tokens == {"d": stamp(5)}

    # its cluster started the sync after it became Pending: Progressing
    seen = fleet.run(12, app("d", started=9, token=stamp(5)), app("p", "prod"))
    assert seen == {"d": "Progressing", "p": "Waiting"}
    assert fleet.entries["d"].message.startswith("Application resource completed a sync successfully")
    assert fleet.decision.tokens == {"d": stamp(5)}, "the operation stays on its work"

    # Synced and Healthy: Healthy, and step 2 is asked to sync
    synced = app("d", sync="Synced", health="Healthy", started=9, token=stamp(5))
    assert fleet.run(20, synced, app("p", "prod")) == {"d": "Healthy", "p": "Pending"}
    assert fleet.decision.tokens == {"d": stamp(5), "p": stamp(20)}
    assert fleet.decision.progressing_step == 2
    assert fleet.entries["d"].last_transition == at(20)

    prod = app("p", "prod", sync="Synced", health="Healthy", started=21, token=stamp(20))
    fleet.run(25, synced, prod)
    assert fleet.run(30, synced, prod) == {"d": "Healthy", "p": "Healthy"}
    assert fleet.decision.progressing_step is None


def test_step_two_never_syncs_while_step_one_is_not_healthy() -> None:
    fleet = Fleet()
    fleet.run(0, app("d"), app("p", "prod"))
    for second in range(10, 200, 10):
        degraded = app("d", sync="Synced", health="Degraded", started=5, token=stamp(0))
        seen = fleet.run(second, degraded, app("p", "prod"))
        assert seen == {"d": "Progressing", "p": "Waiting"}
        assert "p" not in fleet.decision.tokens
        assert fleet.decision.progressing_step == 1


def test_max_update_bounds_a_step() -> None:
    fleet = Fleet(strategy(max_update=1))
    names = ["a", "b", "c"]
    assert fleet.run(0, *(app(n) for n in names)) == {"a": "Pending", "b": "Waiting", "c": "Waiting"}
    fleet.run(5, app("a", started=3, token=stamp(0)), app("b"), app("c"))
    assert fleet.entries["a"].status == "Progressing" and set(fleet.decision.tokens) == {"a"}
    done = app("a", sync="Synced", health="Healthy", started=3, token=stamp(0))
    assert fleet.run(10, done, app("b"), app("c")) == {"a": "Healthy", "b": "Pending", "c": "Waiting"}

    half = Fleet(strategy(max_update="50%"))  # of 3, rounded down: 1
    assert list(half.run(0, *(app(n) for n in names)).values()).count("Pending") == 1
    closed = Fleet(strategy(max_update=0))
    assert set(closed.run(0, *(app(n) for n in names)).values()) == {"Waiting"}


def test_an_application_already_synced_needs_no_sync() -> None:
    fleet = Fleet()
    seen = fleet.run(0, app("d", sync="Synced", health="Healthy"), app("p", "prod", sync="Synced"))
    assert seen == {"d": "Healthy", "p": "Progressing"}
    assert fleet.decision.tokens == {}
    assert fleet.entries["d"].message == "Application resource has synced, updating status to Healthy"

    not_reported = Fleet()
    assert not_reported.run(0, app("d", sync="Synced", health="Healthy", reported=False)) == {"d": "Pending"}


def test_a_spec_change_waits_for_a_fresh_report_and_syncs_again() -> None:
    fleet = Fleet()
    healthy = app("d", sync="Synced", health="Healthy", token=stamp(0))
    fleet.run(0, app("d", sync="Synced", health="Healthy"))
    # the template changed: Waiting, and the operation of the old spec is not carried over
    changed = app("d", sync="Synced", health="Healthy", spec_changed=True, reconciled=1, token=stamp(0))
    assert fleet.run(10, changed) == {"d": "Waiting"}
    assert (
        fleet.entries["d"].message
        == "Application has pending changes (spec differs), setting status to Waiting"
    )
    assert fleet.decision.tokens == {}
    # its cluster compared it since: OutOfSync, but no step moves within the grace period
    assert fleet.run(20, app("d", reconciled=15)) == {"d": "Waiting"}
    assert fleet.run(45, app("d", reconciled=15)) == {"d": "Pending"}
    assert fleet.decision.tokens == {"d": stamp(45)}

    # still Synced from before the change (reconciled before it): not Healthy on that report
    stale = Fleet()
    stale.run(0, healthy)
    assert stale.run(10, app("d", sync="Synced", health="Healthy", spec_changed=True, reconciled=9)) == {
        "d": "Waiting"
    }
    fresh = Fleet()
    fresh.run(0, healthy)
    assert fresh.run(10, app("d", sync="Synced", health="Healthy", spec_changed=True, reconciled=10)) == {
        "d": "Healthy"
    }


def test_no_step_moves_until_every_application_reconciled_since_the_change() -> None:
    fleet = Fleet()
    other = app("e", sync="Synced", health="Healthy", reconciled=5)
    fleet.run(0, app("d", sync="Synced", health="Healthy"), other)
    fleet.run(10, app("d", spec_changed=True, reconciled=11), other)
    assert fleet.run(45, app("d", reconciled=11), other) == {"d": "Waiting", "e": "Healthy"}
    caught_up = dataclasses.replace(other, status={**other.status, "reconciledAt": stamp(12)})
    assert fleet.run(46, app("d", reconciled=11), caught_up)["d"] == "Pending"


def test_a_new_revision_sends_it_back_to_waiting() -> None:
    fleet = Fleet()
    fleet.run(0, app("d", sync="Synced", health="Healthy"))
    assert fleet.run(5, app("d", revision="def", reconciled=5)) == {"d": "Waiting"}
    assert fleet.entries["d"].target_revisions == ("def",)
    assert fleet.run(40, app("d", revision="def", reconciled=5)) == {"d": "Pending"}
    assert fleet.decision.revisions == {"d": ("def",)}, "the sync is pinned to the revision let through"


def test_an_application_of_no_step_waits() -> None:
    fleet = Fleet()
    assert fleet.run(0, app("q", "qa")) == {"q": "Waiting"}
    assert fleet.entries["q"].step == ps.NO_STEP and fleet.decision.tokens == {}


def test_errors_that_block_a_sync_count_as_progressing() -> None:
    fleet = Fleet()
    fleet.run(0, app("d"))
    status = {**app("d").status, "conditions": [{"type": "InvalidSpecError"}]}
    broken = ps.Observed("d", {"env": "dev"}, True, False, True, status, stamp(0))
    assert fleet.run(5, broken) == {"d": "Progressing"}


def test_entries_survive_the_hub() -> None:
    entry = ps.Entry("d", "Pending", "1", "moved", at(3), ("abc", "def"))
    raw = entry.to_json()
    assert raw["lastTransitionTime"] == "2026-12-06T02:00:03Z"
    assert ps.Entry.from_json(raw) == entry
    assert ps.Entry.from_json({"application": "d", "status": "Healthy"}) is None, "no transition time"


def test_the_sync_operation_is_argo_cds() -> None:
    spec = {
        "syncPolicy": {
            "automated": {"prune": True, "selfHeal": True},
            "syncOptions": ["CreateNamespace=true"],
            "retry": {"limit": 2},
        }
    }
    prune = ps.automated_prune(spec)
    ps.disable_automated_sync(spec)
    assert spec["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True, "enabled": False}
    assert ps.sync_operation(spec, prune) == {
        "initiatedBy": {"username": "applicationset-controller", "automated": True},
        "info": [{"name": "Reason", "value": ps.SYNC_REASON}],
        "sync": {"syncOptions": ["CreateNamespace=true"], "prune": True},
        "retry": {"limit": 2},
    }
    assert not ps.automated_prune(spec), "automated sync off: no prune"
    assert ps.sync_operation({}, False)["retry"] == {"limit": 5}
    operation = ps.sync_operation({}, False)
    assert ps.pinned(operation, ("abc",), multiple_sources=False)["sync"] == {"revision": "abc"}
    multiple = ps.pinned(operation, ("abc", "def"), multiple_sources=True)
    assert multiple["sync"] == {"revisions": ["abc", "def"]}
    assert ps.pinned(operation, (), multiple_sources=False) == operation


fleets = st.lists(
    st.builds(
        app,
        st.text(alphabet="abcdefgh", min_size=1, max_size=5),
        st.sampled_from(["dev", "prod", "qa"]),
        sync=st.sampled_from(["Synced", "OutOfSync", "Unknown"]),
        health=st.sampled_from(["Healthy", "Progressing", "Degraded"]),
        exists=st.booleans(),
        reported=st.booleans(),
        started=st.one_of(st.none(), st.integers(0, 30)),
    ),
    max_size=10,
    unique_by=lambda o: o.application,
)


@settings(max_examples=150, deadline=None)
@given(fleets, st.one_of(st.none(), st.integers(0, 3), st.sampled_from(["0%", "30%", "100%"])))
def test_invariants(observed: list[ps.Observed], max_update: Any) -> None:
    fleet = Fleet(strategy(max_update))
    dev = [o.application for o in observed if o.labels["env"] == "dev"]
    for second in (0, 10, 20):
        fleet.run(second, *observed)
        entries = fleet.entries
        assert set(entries) == {o.application for o in observed if o.exists}
        started = [e for e in entries.values() if e.status == "Pending" and e.last_transition == at(second)]
        assert all(e.application in fleet.decision.tokens for e in started)
        if any(e.step == "2" for e in started):
            assert all(n in entries and entries[n].status == "Healthy" for n in dev)
        assert not any(e.step == ps.NO_STEP for e in started)


def test_invalid_rollout_config_names_doubled_and_empty_steps() -> None:
    assert ps.config_issue(2, {"a": (0,), "b": (1,)}) == ""
    doubled = ps.config_issue(2, {"a": (0, 1), "b": (1,)})
    assert doubled == "Application 'a' is selected by multiple steps: (1-2)"
    assert ps.config_issue(3, {"b": (0, 2), "a": (0, 1)}) == (
        "Applications 'a', 'b' are selected by multiple steps: [(1-2), (1-3)]"
    )
    assert ps.config_issue(3, {"a": (1,)}) == "Steps [1 3] have no applications matching their criteria"
    fleet = Fleet()
    fleet.run(0, app("d"))
    assert fleet.decision.config_issue == "Steps [2] have no applications matching their criteria"


def test_the_first_revision_reported_is_no_change() -> None:
    fleet = Fleet()
    fleet.run(0, app("d", revision=""))
    assert fleet.entries["d"].target_revisions == ()
    assert fleet.run(5, app("d", token=stamp(0))) == {"d": "Pending"}
    assert fleet.entries["d"].target_revisions == ("abc",)
    assert fleet.decision.tokens == {"d": stamp(0)}, "the same operation: nothing sent again"


def test_pending_again_waits_for_the_sync_already_asked_for() -> None:
    fleet = Fleet()
    fleet.run(0, app("d"))
    # a new revision while its operation has not started: Pending again, for that same operation
    moved = app("d", revision="def", token=stamp(0), reconciled=5)
    assert fleet.run(5, moved) == {"d": "Waiting"}
    assert fleet.decision.tokens == {"d": stamp(0)}
    assert fleet.run(40, moved) == {"d": "Pending"}
    assert fleet.decision.tokens == {"d": stamp(0)} and fleet.entries["d"].last_transition == at(0)
    started = app("d", revision="def", token=stamp(0), reconciled=5, started=3)
    assert fleet.run(45, started) == {"d": "Progressing"}
    # one whose operation already ran is asked to sync again
    again = Fleet()
    again.run(0, app("d"))
    ran = app("d", revision="def", token=stamp(0), started=1, reconciled=5)
    again.run(5, ran)
    assert again.run(40, ran) == {"d": "Pending"}
    assert again.decision.tokens == {"d": stamp(40)}
