"""RollingSync: steps gate on the health of earlier steps, maxUpdate caps changes in flight.

Cases: parsing strategies and their errors; maxUpdate as integers and percentages (floored at 1);
AllAtOnce; RollingSync scenarios (first step, next step after health, maxUpdate slots, stale
status, degraded Applications blocking, maxUpdate 0, Applications of no step, overlapping
steps); deletion order; properties (only pending targets are allowed, a step never exceeds its
budget, no step starts before the earlier ones are done).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controllers.propagation import errors, rollout


def step(env: str, max_update: Any = None) -> dict[str, Any]:
    s: dict[str, Any] = {"matchExpressions": [{"key": "env", "operator": "In", "values": [env]}]}
    if max_update is not None:
        s["maxUpdate"] = max_update
    return s


ROLLING = {"strategy": {"type": "RollingSync", "rollingSync": {"steps": [step("dev"), step("prod", 1)]}}}


STRATEGIES = [
    ("none", {}, rollout.Strategy()),
    ("AllAtOnce", {"strategy": {"type": "AllAtOnce"}}, rollout.Strategy()),
    (
        "RollingSync",
        {
            "strategy": {
                "type": "RollingSync",
                "deletionOrder": "Reverse",
                "rollingSync": {"steps": [step("dev", "25%")]},
            }
        },
        rollout.Strategy(
            "RollingSync", (rollout.Step(tuple(step("dev")["matchExpressions"]), "25%"),), "Reverse"
        ),
    ),
]


@pytest.mark.parametrize(("spec", "want"), [c[1:] for c in STRATEGIES], ids=[c[0] for c in STRATEGIES])
def test_parse_strategy(spec: dict[str, Any], want: rollout.Strategy) -> None:
    assert rollout.parse_strategy(spec) == want


def _rolling(steps: Any, **extra: Any) -> dict[str, Any]:
    return {"strategy": {"type": "RollingSync", "rollingSync": {"steps": steps, **extra}}}


STRATEGY_ERRORS = [
    ("unknown type", {"strategy": {"type": "Canary"}}, "'Canary' is not supported"),
    ("no steps", _rolling([]), "needs at least one step"),
    ("negative maxUpdate", _rolling([step("dev", -1)]), "steps[0].maxUpdate: -1"),
    (
        "string maxUpdate without percent",
        _rolling([step("dev", "3")]),
        "'3' must be a non-negative integer or a percentage",
    ),
    ("bad percentage", _rolling([step("dev", "x%")]), "'x%'"),
    ("boolean maxUpdate", _rolling([step("dev", True)]), "True"),
    (
        "bad operator",
        _rolling([{"matchExpressions": [{"key": "env", "operator": "Like", "values": ["x"]}]}]),
        "'Like'",
    ),
    ("defaultPrune", _rolling([step("dev")], defaultPrune=True), "defaultPrune: not supported"),
    (
        "Reverse without RollingSync",
        {"strategy": {"deletionOrder": "Reverse"}},
        "Reverse needs type: RollingSync",
    ),
    (
        "unknown deletionOrder",
        {"strategy": {"deletionOrder": "Random"}},
        "'Random' is not AllAtOnce or Reverse",
    ),
]


@pytest.mark.parametrize(
    ("spec", "words"), [c[1:] for c in STRATEGY_ERRORS], ids=[c[0] for c in STRATEGY_ERRORS]
)
def test_strategy_errors(spec: dict[str, Any], words: str) -> None:
    with pytest.raises(errors.RolloutError) as caught:
        rollout.parse_strategy(spec)
    assert words in str(caught.value)


@pytest.mark.parametrize(
    ("max_update", "members", "budget"),
    [
        (None, 10, 10),
        (0, 10, 0),
        (3, 10, 3),
        ("10%", 5, 1),
        ("50%", 5, 2),
        ("0%", 5, 0),
        ("100%", 3, 3),
        ("250%", 2, 5),
    ],
    ids=[
        "default 100%",
        "zero",
        "integer",
        "percent floored at 1",
        "percent rounds down",
        "zero percent",
        "all",
        "over 100%",
    ],
)
def test_step_budget(max_update: Any, members: int, budget: int) -> None:
    assert rollout.Step((), max_update).budget(members) == budget


def target(
    name: str,
    env: str,
    *,
    pending: bool = False,
    health: str = "Healthy",
    sync: str = "Synced",
    current: bool = True,
) -> rollout.RolloutTarget:
    return rollout.RolloutTarget(name, {"env": env}, pending, current, sync, health)


def test_all_at_once_sends_every_change() -> None:
    decision = rollout.plan_rollout(
        rollout.parse_strategy({}),
        [target("a", "dev", pending=True), target("b", "prod"), target("c", "prod", health="Degraded")],
    )
    assert decision.allowed == {"a"}
    assert [(s.application, s.status, s.step) for s in decision.statuses] == [
        ("a", "Pending", "1"),
        ("b", "Healthy", "1"),
        ("c", "Progressing", "1"),
    ]
    assert decision.current_step == 1 and decision.progressing


SCENARIOS = [
    (
        "first step goes first",
        [
            target("dev-1", "dev", pending=True),
            target("prod-1", "prod", pending=True),
            target("prod-2", "prod", pending=True),
        ],
        {"dev-1"},
        {"dev-1": "Pending", "prod-1": "Waiting", "prod-2": "Waiting"},
        1,
    ),
    (
        "next step once the first is healthy, one at a time",
        [
            target("dev-1", "dev"),
            target("prod-1", "prod", pending=True),
            target("prod-2", "prod", pending=True),
        ],
        {"prod-1"},
        {"dev-1": "Healthy", "prod-1": "Pending", "prod-2": "Waiting"},
        2,
    ),
    (
        "an Application in flight takes the maxUpdate slot",
        [
            target("dev-1", "dev"),
            target("prod-1", "prod", health="Progressing"),
            target("prod-2", "prod", pending=True),
        ],
        set(),
        {"dev-1": "Healthy", "prod-1": "Progressing", "prod-2": "Waiting"},
        2,
    ),
    (
        "a stale status is not healthy yet",
        [target("dev-1", "dev", current=False), target("prod-1", "prod", pending=True)],
        set(),
        {"dev-1": "Pending", "prod-1": "Waiting"},
        1,
    ),
    (
        "out of sync is not done",
        [target("dev-1", "dev", sync="OutOfSync"), target("prod-1", "prod", pending=True)],
        set(),
        {"dev-1": "Progressing", "prod-1": "Waiting"},
        1,
    ),
    (
        "a degraded Application blocks later steps",
        [target("dev-1", "dev", health="Degraded"), target("prod-1", "prod", pending=True)],
        set(),
        {"dev-1": "Progressing", "prod-1": "Waiting"},
        1,
    ),
    (
        "Applications of no step never change",
        [target("qa-1", "qa", pending=True), target("qa-2", "qa"), target("dev-1", "dev")],
        set(),
        {"qa-1": "Waiting", "qa-2": "Healthy", "dev-1": "Healthy"},
        None,
    ),
    (
        "all done",
        [target("dev-1", "dev"), target("prod-1", "prod")],
        set(),
        {"dev-1": "Healthy", "prod-1": "Healthy"},
        None,
    ),
]


@pytest.mark.parametrize(
    ("targets", "allowed", "statuses", "current"), [c[1:] for c in SCENARIOS], ids=[c[0] for c in SCENARIOS]
)
def test_rolling_sync(
    targets: list[rollout.RolloutTarget], allowed: set[str], statuses: dict[str, str], current: int | None
) -> None:
    decision = rollout.plan_rollout(rollout.parse_strategy(ROLLING), targets)
    assert decision.allowed == allowed
    assert {s.application: s.status for s in decision.statuses} == statuses
    assert decision.current_step == current


def test_waiting_messages_say_why() -> None:
    strategy = rollout.parse_strategy(_rolling([step("dev", 0), step("prod")]))
    decision = rollout.plan_rollout(
        strategy,
        [
            target("dev-1", "dev", pending=True),
            target("prod-1", "prod", pending=True),
            target("x", "qa", pending=True),
        ],
    )
    messages = {s.application: (s.step, s.message) for s in decision.statuses}
    assert messages["dev-1"] == ("1", "maxUpdate is 0: raise it to let this step proceed")
    assert messages["prod-1"] == ("2", "waiting for the Applications of steps before 2 to become Healthy")
    assert messages["x"][0] == "" and "no RollingSync step selects" in messages["x"][1]


def test_overlapping_steps_use_the_first_and_warn() -> None:
    strategy = rollout.parse_strategy(_rolling([{"matchExpressions": []}, step("dev")]))
    decision = rollout.plan_rollout(strategy, [target("dev-1", "dev", pending=True)])
    assert decision.statuses[0].step == "1"
    assert decision.warnings == ("Application 'dev-1' matches steps 1, 2; it rolls out in step 1",)


@pytest.mark.parametrize(
    ("spec", "groups"),
    [
        ({}, [["a-dev", "b-prod", "c-qa"]]),
        (
            {"strategy": {**ROLLING["strategy"], "deletionOrder": "Reverse"}},
            [["c-qa"], ["b-prod"], ["a-dev"]],
        ),
    ],
    ids=["all at once", "reverse: unselected, then last step first"],
)
def test_deletion_groups(spec: dict[str, Any], groups: list[list[str]]) -> None:
    doomed = [("b-prod", {"env": "prod"}), ("a-dev", {"env": "dev"}), ("c-qa", {"env": "qa"})]
    assert rollout.deletion_groups(rollout.parse_strategy(spec), doomed) == groups
    assert rollout.deletion_groups(rollout.parse_strategy(spec), []) == []


targets_strategy = st.lists(
    st.builds(
        rollout.RolloutTarget,
        application=st.text(alphabet="abcdefgh", min_size=1, max_size=6),
        labels=st.fixed_dictionaries({"env": st.sampled_from(["dev", "prod", "qa"])}),
        pending_change=st.booleans(),
        status_current=st.booleans(),
        sync_status=st.sampled_from(["Synced", "OutOfSync", "Unknown"]),
        health_status=st.sampled_from(["Healthy", "Progressing", "Degraded"]),
    ),
    max_size=12,
    unique_by=lambda t: t.application,
)


@settings(max_examples=150, deadline=None)
@given(targets_strategy, st.one_of(st.none(), st.integers(0, 4), st.sampled_from(["0%", "30%", "100%"])))
def test_rollout_invariants(targets: list[rollout.RolloutTarget], max_update: Any) -> None:
    strategy = rollout.parse_strategy(_rolling([step("dev", max_update), step("prod", max_update)]))
    decision = rollout.plan_rollout(strategy, targets)
    pending = {t.application for t in targets if t.pending_change}
    assert decision.allowed <= pending
    dev = [t for t in targets if t.labels["env"] == "dev"]
    for env in ("dev", "prod"):
        members = [t for t in targets if t.labels["env"] == env]
        in_flight = sum(t.in_flight for t in members)
        started = sum(t.application in decision.allowed for t in members)
        assert started <= max(0, strategy.steps[0].budget(len(members)) - in_flight)
    if any(t.application in decision.allowed for t in targets if t.labels["env"] == "prod"):
        assert all(t.done for t in dev)
    assert not any(t.application in decision.allowed for t in targets if t.labels["env"] == "qa")
    assert len(decision.statuses) == len(targets)
