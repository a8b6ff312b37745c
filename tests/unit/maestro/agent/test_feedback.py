"""Status feedback rules evaluated on live objects, and the JSONPath subset they use.

Cases: JSONPaths on scalars (String/Integer/Boolean), objects and lists (JsonRaw), array indexes,
filters, bracketed keys, wildcards, recursive descent, missing paths (omitted), a version mismatch
and an oversize value (errors); WellKnownStatus for Deployments, Jobs, Pods and Argo CD
Applications, and for a kind with none; unhealthy objects `problem` recognizes; malformed paths.
"""

from __future__ import annotations

from typing import Any

import pytest

from maestro.agent import feedback, jsonpath
from maestro.agent.errors import JsonPathError
from maestro.agent.manifests import JSON_PATHS, WELL_KNOWN_STATUS, FeedbackRule, JsonPath

APP: dict[str, Any] = {
    "apiVersion": "argoproj.io/v1alpha1",
    "kind": "Application",
    "metadata": {"name": "guestbook", "namespace": "argocd", "labels": {"app.kubernetes.io/name": "gb"}},
    "spec": {"project": "default"},
    "status": {
        "sync": {"status": "Synced", "revision": "abc123"},
        "health": {"status": "Healthy"},
        "operationState": {"phase": "Succeeded"},
        "conditions": [
            {"type": "SyncError", "status": "False"},
            {"type": "Ready", "status": "True", "count": 2},
        ],
        "resources": [{"kind": "Service", "name": "a"}, {"kind": "Deployment", "name": "b"}],
        "ready": True,
    },
}

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {"replicas": 3},
    "status": {"replicas": 3, "readyReplicas": 2, "availableReplicas": 2},
}


def rule(*paths: tuple[str, str] | tuple[str, str, str]) -> FeedbackRule:
    return FeedbackRule(JSON_PATHS, tuple(JsonPath(*p) for p in paths))


def string(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "fieldValue": {"type": "String", "string": value}}


def integer(name: str, value: int) -> dict[str, Any]:
    return {"name": name, "fieldValue": {"type": "Integer", "integer": value}}


def raw(name: str, value: str) -> dict[str, Any]:
    return {"name": name, "fieldValue": {"type": "JsonRaw", "jsonRaw": value}}


JSON_PATH_CASES = [
    ("string", ("s", ".status.sync.status"), APP, [string("s", "Synced")]),
    ("nested-string", ("p", ".status.operationState.phase"), APP, [string("p", "Succeeded")]),
    ("integer", ("r", ".spec.replicas"), DEPLOYMENT, [integer("r", 3)]),
    (
        "boolean",
        ("b", ".status.ready"),
        APP,
        [{"name": "b", "fieldValue": {"type": "Boolean", "boolean": True}}],
    ),
    ("object-is-json-raw", ("h", ".status.health"), APP, [raw("h", '{"status":"Healthy"}')]),
    (
        "list-is-json-raw-with-sorted-keys",
        ("c", ".status.conditions"),
        APP,
        [raw("c", '[{"status":"False","type":"SyncError"},{"count":2,"status":"True","type":"Ready"}]')],
    ),
    ("index", ("first", ".status.resources[0].kind"), APP, [string("first", "Service")]),
    ("negative-index", ("last", ".status.resources[-1].name"), APP, [string("last", "b")]),
    ("filter", ("ready", '.status.conditions[?(@.type=="Ready")].status'), APP, [string("ready", "True")]),
    ("filter-single-quotes", ("n", ".status.conditions[?(@.type=='Ready')].count"), APP, [integer("n", 2)]),
    ("filter-number", ("t", ".status.conditions[?(@.count>1)].type"), APP, [string("t", "Ready")]),
    ("filter-exists", ("t", ".status.conditions[?(@.count)].type"), APP, [string("t", "Ready")]),
    ("filter-no-match-omitted", ("x", '.status.conditions[?(@.type=="Nope")].status'), APP, []),
    (
        "wildcard-many-is-json-raw",
        ("k", ".status.resources[*].kind"),
        APP,
        [raw("k", '["Service","Deployment"]')],
    ),
    ("slice", ("s", ".status.resources[0:1].name"), APP, [string("s", "a")]),
    (
        "bracketed-key-with-dots",
        ("l", ".metadata.labels['app.kubernetes.io/name']"),
        APP,
        [string("l", "gb")],
    ),
    ("escaped-dots", ("l", r".metadata.labels.app\.kubernetes\.io/name"), APP, [string("l", "gb")]),
    ("recursive-descent", ("rev", "..revision"), APP, [string("rev", "abc123")]),
    ("braces-and-dollar-accepted", ("s", "{$.status.sync.status}"), APP, [string("s", "Synced")]),
    ("missing-omitted", ("m", ".status.nothing.here"), APP, []),
    ("index-out-of-range-omitted", ("m", ".status.resources[5].name"), APP, []),
    ("field-on-list-omitted", ("m", ".status.resources.name"), APP, []),
    ("float-is-json-raw", ("f", ".spec.ratio"), {"spec": {"ratio": 0.5}}, [raw("f", "0.5")]),
    ("null-omitted", ("n", ".spec.x"), {"spec": {"x": None}}, []),
]


@pytest.mark.parametrize(
    ("path", "obj", "want"), [c[1:] for c in JSON_PATH_CASES], ids=[c[0] for c in JSON_PATH_CASES]
)
def test_json_paths(path: tuple[str, str], obj: dict[str, Any], want: list[dict[str, Any]]) -> None:
    result = feedback.evaluate([rule(path)], obj)
    assert result.errors == ()
    assert list(result.values) == want


WELL_KNOWN_CASES = [
    (
        "deployment",
        DEPLOYMENT,
        [integer("ReadyReplicas", 2), integer("Replicas", 3), integer("AvailableReplicas", 2)],
    ),
    ("deployment-without-status", {**DEPLOYMENT, "status": {}}, []),
    (
        "job",
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "status": {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]},
        },
        [string("JobComplete", "True"), integer("JobSucceeded", 1)],
    ),
    (
        "pod",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]},
        },
        [string("PodReady", "False"), string("PodPhase", "Running")],
    ),
    (
        "argocd-application",
        APP,
        [
            string("SyncStatus", "Synced"),
            string("HealthStatus", "Healthy"),
            string("Revision", "abc123"),
            string("OperationPhase", "Succeeded"),
        ],
    ),
    ("argocd-application-not-synced-yet", {**APP, "status": {}}, []),
]


@pytest.mark.parametrize(
    ("obj", "want"), [c[1:] for c in WELL_KNOWN_CASES], ids=[c[0] for c in WELL_KNOWN_CASES]
)
def test_well_known_status(obj: dict[str, Any], want: list[dict[str, Any]]) -> None:
    result = feedback.evaluate([FeedbackRule(WELL_KNOWN_STATUS)], obj)
    assert result.errors == ()
    assert list(result.values) == want


ERROR_CASES = [
    (
        "no-well-known-status-for-kind",
        [FeedbackRule(WELL_KNOWN_STATUS)],
        {"apiVersion": "v1", "kind": "ConfigMap"},
        "no well-known status for kind ConfigMap of group core",
    ),
    (
        "version-mismatch",
        [rule(("r", ".spec.replicas", "v1beta1"))],
        DEPLOYMENT,
        "r: the path is for version v1beta1, the object is v1",
    ),
    (
        "json-raw-too-long",
        [rule(("big", ".data"))],
        {"data": {"k": "x" * 2000}},
        "big: the JSON value is 2008 bytes, more than the 1024 allowed",
    ),
    ("bad-path", [rule(("bad", ".status[oops]"))], APP, "bad: bad subscript [oops]"),
]


@pytest.mark.parametrize(
    ("rules", "obj", "want"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES]
)
def test_errors_name_the_rule(rules: list[FeedbackRule], obj: dict[str, Any], want: str) -> None:
    result = feedback.evaluate(rules, obj)
    assert result.values == ()
    assert len(result.errors) == 1
    assert result.errors[0].startswith(want)


def test_errors_do_not_hide_other_values() -> None:
    result = feedback.evaluate([rule(("bad", ".a[x]"), ("ok", ".spec.replicas"))], DEPLOYMENT)
    assert list(result.values) == [integer("ok", 3)]
    assert len(result.errors) == 1


BAD_PATHS = [
    ("empty", ""),
    ("no-leading-dot", "status"),
    ("unclosed-bracket", ".a[0"),
    ("unclosed-filter", '.a[?(@.x=="y"'),
    ("filter-without-at", '.a[?("y"=="y")]'),
    ("unclosed-string", '.a[?(@.x=="y)]'),
]


@pytest.mark.parametrize("path", [c[1] for c in BAD_PATHS], ids=[c[0] for c in BAD_PATHS])
def test_malformed_paths_raise(path: str) -> None:
    with pytest.raises(JsonPathError):
        jsonpath.find(path, APP)


PROBLEM_CASES = [
    ("healthy-app", APP, None),
    (
        "degraded-app",
        {**APP, "status": {"health": {"status": "Degraded", "message": "crashloop"}}},
        "Argo CD reports health Degraded: crashloop",
    ),
    (
        "failed-sync",
        {**APP, "status": {"health": {"status": "Healthy"}, "operationState": {"phase": "Failed"}}},
        "Argo CD sync Failed",
    ),
    (
        "failed-job",
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "status": {
                "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]
            },
        },
        "job failed: BackoffLimitExceeded",
    ),
    (
        "stalled-deployment",
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "status": {
                "conditions": [
                    {"type": "Progressing", "reason": "ProgressDeadlineExceeded", "message": "too slow"}
                ]
            },
        },
        "deployment rollout stalled: too slow",
    ),
    (
        "failed-pod",
        {"apiVersion": "v1", "kind": "Pod", "status": {"phase": "Failed", "reason": "Evicted"}},
        "pod failed: Evicted",
    ),
    ("configmap", {"apiVersion": "v1", "kind": "ConfigMap", "data": {}}, None),
    ("absent", None, None),
]


@pytest.mark.parametrize(("obj", "want"), [c[1:] for c in PROBLEM_CASES], ids=[c[0] for c in PROBLEM_CASES])
def test_problem(obj: dict[str, Any] | None, want: str | None) -> None:
    assert feedback.problem(obj) == want


SECRET: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {
        "name": "db",
        "namespace": "shop",
        "labels": {"app": "shop"},
        "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": '{"stringData":{"password":"hunter2"}}',
            "team": "a",
        },
    },
    "type": "Opaque",
    "data": {"password": "aHVudGVyMg=="},
    "stringData": {"password": "hunter2"},
}


def test_a_secret_reports_no_values_whatever_the_path() -> None:
    rules = [
        rule(
            ("Type", ".type"),
            ("Labels", ".metadata.labels"),
            ("Password", ".data.password"),
            ("Plain", ".stringData.password"),
            ("Data", ".data"),
            ("Everything", ".*"),
            ("Deep", "..password"),
            ("Annotation", ".metadata.annotations"),
        )
    ]
    result = feedback.evaluate(rules, SECRET)
    shown = repr(result.values)
    assert "aHVudGVyMg==" not in shown and "hunter2" not in shown
    by_name = {v["name"]: v["fieldValue"] for v in result.values}
    assert by_name["Type"] == {"type": "String", "string": "Opaque"}
    assert by_name["Labels"] == {"type": "JsonRaw", "jsonRaw": '{"app":"shop"}'}
    assert by_name["Annotation"] == {"type": "JsonRaw", "jsonRaw": '{"team":"a"}'}
    assert '"data"' not in by_name["Everything"]["jsonRaw"] and "Opaque" in by_name["Everything"]["jsonRaw"]
    assert set(by_name) == {"Type", "Labels", "Everything", "Annotation"}
    assert sorted(result.errors) == [
        f"{name}: the path reads a Secret's values, which are never reported"
        for name in ("Data", "Deep", "Password", "Plain")
    ]
    assert SECRET["data"] == {"password": "aHVudGVyMg=="}  # the live object is not changed


def test_a_secret_of_another_group_is_an_ordinary_object() -> None:
    other = {**SECRET, "apiVersion": "example.com/v1"}
    result = feedback.evaluate([rule(("Password", ".data.password"))], other)
    assert result.values == (string("Password", "aHVudGVyMg=="),) and not result.errors
