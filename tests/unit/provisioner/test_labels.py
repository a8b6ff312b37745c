"""Inventory label tenancy: keys under fleetplane.io/ (and its subdomains) are the platform's.

Cases: which keys are reserved (the domain, its subdomains, any case; not look-alikes or keys
without a prefix); the refusal names the field, every reserved key and the fix; a claim without
labels, with its own labels, with malformed parameters; the team label is the claim's namespace.
"""

from __future__ import annotations

from typing import Any

import pytest

from provisioner import labels


@pytest.mark.parametrize(
    ("key", "reserved"),
    [
        ("fleetplane.io/team", True),
        ("fleetplane.io/demo", True),
        ("FleetPlane.IO/team", True),
        ("demo.fleetplane.io/enabled", True),
        ("a.b.fleetplane.io/x", True),
        ("demo", False),
        ("team", False),
        ("env", False),
        ("notfleetplane.io/x", False),
        ("fleetplane.io.example.com/x", False),
        ("example.com/fleetplane.io", False),
        ("app.kubernetes.io/name", False),
    ],
)
def test_reserved_keys(key: str, reserved: bool) -> None:
    assert labels.is_reserved(key) is reserved


def test_the_refusal_names_the_field_each_key_and_the_fix() -> None:
    claim: dict[str, Any] = {
        "spec": {"parameters": {"labels": {"env": "a", "fleetplane.io/team": "b", "x.fleetplane.io/y": "c"}}}
    }
    message = labels.claim_refusal(claim)
    assert message is not None
    assert message.startswith(
        "spec.parameters.labels: fleetplane.io/team, x.fleetplane.io/y are reserved: keys under "
        "fleetplane.io/ (and *.fleetplane.io/) are set by the platform only"
    )
    assert "remove them from spec.parameters.labels" in message and 'demo: "true"' in message
    one = labels.claim_refusal({"spec": {"parameters": {"labels": {"fleetplane.io/demo": "true"}}}})
    assert one is not None and "fleetplane.io/demo is reserved" in one and "remove it from" in one


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"parameters": {}},
        {"parameters": {"labels": {"env": "prod", "demo": "true"}}},
        {"parameters": "x"},
    ],
)
def test_a_claim_with_its_own_labels_is_accepted(spec: dict[str, Any]) -> None:
    assert labels.claim_refusal({"spec": spec}) is None


def test_the_platform_sets_the_team_from_the_claims_namespace() -> None:
    assert labels.platform_labels("team-a") == {"fleetplane.io/team": "team-a"}
    assert labels.platform_labels(None) == {}
