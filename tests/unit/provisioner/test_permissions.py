"""A claim's extra permissions for its Maestro agent, checked before anything is applied.

Cases: well-formed namespaced, cluster-wide and non-resource rules pass; each malformed rule is
reported with its field path and the fix (not a list, not an object, unknown field, no verbs, no
resources, resources without apiGroups, both resources and URLs, a bad namespace, URLs with a
namespace, non-string lists); every problem of every rule is reported at once.
"""

from __future__ import annotations

from typing import Any

import pytest

from provisioner import permissions

FIELD = "spec.parameters.agentPermissions"
VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]


def test_well_formed_rules_pass() -> None:
    rules = [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": VERBS, "namespace": "default"},
        {"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["web"], "verbs": ["get"]},
        {"nonResourceURLs": ["/healthz"], "verbs": ["get"]},
    ]
    assert permissions.problems(rules) == []
    assert permissions.problems(None) == []
    assert permissions.problems([]) == []


@pytest.mark.parametrize(
    ("rules", "want"),
    [
        ({"verbs": ["get"]}, f"{FIELD}: is dict, not a list — give a list of RBAC rules"),
        (["get"], f"{FIELD}[0]: is str, not an object — write an RBAC rule (apiGroups, resources, verbs)"),
        (
            [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"], "verb": "x"}],
            f"{FIELD}[0]: unknown field verb — a rule has apiGroups, resources, resourceNames, "
            "nonResourceURLs, verbs, namespace",
        ),
        (
            [{"apiGroups": [""], "resources": ["pods"]}],
            f"{FIELD}[0].verbs: is empty — list what the agent may do, e.g. {'[' + ', '.join(VERBS) + ']'}",
        ),
        (
            [{"apiGroups": [""], "verbs": ["get"]}],
            f"{FIELD}[0]: names no resources — give apiGroups and resources (or nonResourceURLs)",
        ),
        (
            [{"resources": ["pods"], "verbs": ["get"]}],
            f'{FIELD}[0].apiGroups: is empty — name the resources\' group, "" for the core group',
        ),
        (
            [{"apiGroups": [""], "resources": ["pods"], "nonResourceURLs": ["/x"], "verbs": ["get"]}],
            f"{FIELD}[0]: has both resources and nonResourceURLs — split it into two rules",
        ),
        (
            [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"], "namespace": "Team_A"}],
            f"{FIELD}[0].namespace: 'Team_A' is not a namespace name — a DNS label, or leave it out "
            "for a cluster-wide rule",
        ),
        (
            [{"nonResourceURLs": ["/x"], "verbs": ["get"], "namespace": "default"}],
            f"{FIELD}[0].namespace: nonResourceURLs are cluster-wide — remove namespace",
        ),
        (
            [{"apiGroups": "apps", "resources": ["pods"], "verbs": ["get"]}],
            f"{FIELD}[0].apiGroups: must be a list of strings",
        ),
    ],
)
def test_each_problem_names_the_field_and_the_fix(rules: Any, want: str) -> None:
    assert want in permissions.problems(rules)


def test_every_rule_is_checked() -> None:
    rules = [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["pods"]},
        {"apiGroups": [""], "verbs": ["get"]},
    ]
    found = permissions.problems(rules)
    assert [p.split(":")[0] for p in found] == [f"{FIELD}[1].verbs", f"{FIELD}[2]"]
