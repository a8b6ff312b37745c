"""Label selectors behave as Kubernetes': matchLabels, In/NotIn/Exists/DoesNotExist, clear errors.

Cases: each operator with the key present/absent, AND of requirements, empty selector, malformed
selectors (unknown operator, values where none belong, missing values, missing key); property:
NotIn is exactly the negation of In.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controllers.propagation import errors, selectors

LABELS = {"env": "prod", "region": "eu"}

MATCHES = [
    ("no selector", None, True),
    ("empty selector", {}, True),
    ("matchLabels hit", {"matchLabels": {"env": "prod"}}, True),
    ("matchLabels miss", {"matchLabels": {"env": "dev"}}, False),
    ("matchLabels absent key", {"matchLabels": {"tier": "web"}}, False),
    ("In hit", {"matchExpressions": [{"key": "env", "operator": "In", "values": ["dev", "prod"]}]}, True),
    ("In miss", {"matchExpressions": [{"key": "env", "operator": "In", "values": ["dev"]}]}, False),
    ("In absent key", {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]}, False),
    ("NotIn hit", {"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}, False),
    (
        "NotIn absent key matches",
        {"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]},
        True,
    ),
    ("Exists", {"matchExpressions": [{"key": "region", "operator": "Exists"}]}, True),
    ("Exists absent", {"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, False),
    ("DoesNotExist", {"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, True),
    ("DoesNotExist present", {"matchExpressions": [{"key": "env", "operator": "DoesNotExist"}]}, False),
    (
        "all requirements must hold",
        {
            "matchLabels": {"env": "prod"},
            "matchExpressions": [{"key": "region", "operator": "In", "values": ["us"]}],
        },
        False,
    ),
]


@pytest.mark.parametrize(("selector", "want"), [c[1:] for c in MATCHES], ids=[c[0] for c in MATCHES])
def test_matches(selector: dict[str, Any] | None, want: bool) -> None:
    assert selectors.matches(selector, LABELS) is want


MALFORMED = [
    (
        "unknown operator",
        {"matchExpressions": [{"key": "env", "operator": "Gt", "values": ["1"]}]},
        "'Gt' is not",
    ),
    (
        "In without values",
        {"matchExpressions": [{"key": "env", "operator": "In"}]},
        "needs at least one value",
    ),
    (
        "Exists with values",
        {"matchExpressions": [{"key": "env", "operator": "Exists", "values": ["x"]}]},
        "takes no values",
    ),
    ("missing key", {"matchExpressions": [{"operator": "Exists"}]}, ".key: required"),
    (
        "values not a list",
        {"matchExpressions": [{"key": "env", "operator": "In", "values": "prod"}]},
        "must be a list",
    ),
    ("matchLabels not a map", {"matchLabels": ["env"]}, "matchLabels: must be a map"),
]


@pytest.mark.parametrize(("selector", "words"), [c[1:] for c in MALFORMED], ids=[c[0] for c in MALFORMED])
def test_malformed_selectors_name_the_field(selector: dict[str, Any], words: str) -> None:
    with pytest.raises(errors.SelectorError, match=words):
        selectors.validate(selector, path="spec.selector")


labels_strategy = st.dictionaries(
    st.sampled_from(["a", "b", "c"]), st.sampled_from(["x", "y", "z"]), max_size=3
)


@settings(max_examples=100, deadline=None)
@given(
    labels_strategy, st.sampled_from(["a", "b", "c"]), st.lists(st.sampled_from(["x", "y", "z"]), min_size=1)
)
def test_not_in_is_the_negation_of_in(labels: dict[str, str], key: str, values: list[str]) -> None:
    def sel(op: str) -> dict[str, Any]:
        return {"matchExpressions": [{"key": key, "operator": op, "values": values}]}

    assert selectors.matches(sel("NotIn"), labels) is not selectors.matches(sel("In"), labels)
