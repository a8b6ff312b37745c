"""Rollout strategies: parsing, steps' maxUpdate and the order of deletions.

Cases: parsing strategies and their errors (operators other than In/NotIn refused); maxUpdate as
integers and percentages (floored at 1); deletion order. The RollingSync pass itself is in
``test_progressive_sync``.
"""

from __future__ import annotations

from typing import Any

import pytest

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
    (
        "Exists, which Argo CD's steps do not take",
        _rolling([{"matchExpressions": [{"key": "env", "operator": "Exists"}]}]),
        "operator: 'Exists' is not supported in RollingSync steps",
    ),
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
        (None, 10, None),
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
def test_step_budget(max_update: Any, members: int, budget: int | None) -> None:
    assert rollout.Step((), max_update).budget(members) == budget


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
