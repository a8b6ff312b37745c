"""Parsing a bundle's manifests, manifestConfigs and deleteOption; the marker and record names.

Cases: valid manifests (namespaced, cluster-scoped, core group); malformed ones, each with an
error naming the manifest and the field; configs (defaults, SSA options, wildcards, a malformed
entry kept as an error); delete options (default Foreground, Orphan, SelectivelyOrphan, invalid);
what is written (server fields and status dropped, marker added); label values and record names
for ids that are and are not valid Kubernetes names; records round-trip through their object.
"""

from __future__ import annotations

from typing import Any

import pytest

from maestro.agent import records
from maestro.agent.errors import ManifestError
from maestro.agent.manifests import (
    FOREGROUND,
    MARKER_LABEL,
    ORPHAN,
    SELECTIVELY_ORPHAN,
    ManifestMeta,
    ObjectRef,
    desired_body,
    find_config,
    guess_resource,
    marker_value,
    parse_delete_option,
    parse_manifest,
    parse_manifest_configs,
)

CM: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "ConfigMap",
    "metadata": {"name": "c", "namespace": "ns"},
    "data": {"a": "1"},
}

VALID = [
    ("core-namespaced", CM, ("", "v1", "ConfigMap", "ns", "c")),
    (
        "grouped",
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"}},
        ("apps", "v1", "Deployment", "shop", "web"),
    ),
    (
        "no-namespace",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
        ("", "v1", "Namespace", "", "shop"),
    ),
]


@pytest.mark.parametrize(("raw", "want"), [c[1:] for c in VALID], ids=[c[0] for c in VALID])
def test_parse_manifest(raw: dict[str, Any], want: tuple[str, ...]) -> None:
    parsed = parse_manifest(0, raw)
    assert (parsed.group, parsed.version, parsed.kind, parsed.namespace, parsed.name) == want


INVALID = [
    ("not-an-object", "hello", "manifest 3: expected a Kubernetes object, got str"),
    (
        "no-api-version",
        {"kind": "ConfigMap", "metadata": {"name": "c"}},
        "manifest 3 (ConfigMap c): apiVersion",
    ),
    ("bad-api-version", {**CM, "apiVersion": "a/b/c"}, "manifest 3 (ConfigMap ns/c): apiVersion must be"),
    ("no-kind", {"apiVersion": "v1", "metadata": {"name": "c"}}, "manifest 3 (? c): kind is required"),
    (
        "no-metadata",
        {"apiVersion": "v1", "kind": "ConfigMap"},
        "manifest 3 (ConfigMap ?): metadata is required",
    ),
    (
        "generate-name",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "c-", "namespace": "ns"}},
        "manifest 3 (ConfigMap ns/?): metadata.name is required (generateName is not supported)",
    ),
    (
        "namespace-not-string",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": 5}},
        "manifest 3 (ConfigMap 5/c): metadata.namespace must be a string",
    ),
]


@pytest.mark.parametrize(("raw", "want"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_parse_manifest_errors_name_manifest_and_field(raw: Any, want: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(3, raw)
    assert str(caught.value).startswith(want)


META = ManifestMeta(0, "apps", "v1", "Deployment", "deployments", "shop", "web")

CONFIG_CASES = [
    ("exact", {"group": "apps", "resource": "deployments", "namespace": "shop", "name": "web"}, True),
    ("wildcards", {"group": "apps", "resource": "deployments", "namespace": "*", "name": "*"}, True),
    ("other-name", {"group": "apps", "resource": "deployments", "namespace": "shop", "name": "api"}, False),
    ("other-group", {"group": "", "resource": "deployments", "namespace": "shop", "name": "web"}, False),
]


@pytest.mark.parametrize(
    ("ident", "matches"), [c[1:] for c in CONFIG_CASES], ids=[c[0] for c in CONFIG_CASES]
)
def test_find_config(ident: dict[str, str], matches: bool) -> None:
    configs = parse_manifest_configs([{"resourceIdentifier": ident}])
    assert (find_config(configs, META) is not None) is matches


def test_config_strategy_and_rules() -> None:
    (config,) = parse_manifest_configs(
        [
            {
                "resourceIdentifier": {
                    "group": "apps",
                    "resource": "deployments",
                    "namespace": "shop",
                    "name": "web",
                },
                "updateStrategy": {
                    "type": "ServerSideApply",
                    "serverSideApply": {"force": True, "fieldManager": "me"},
                },
                "feedbackRules": [
                    {"type": "WellKnownStatus"},
                    {"type": "JSONPaths", "jsonPaths": [{"name": "r", "path": ".spec.replicas"}]},
                ],
            }
        ]
    )
    assert config.error is None
    assert config.strategy is not None
    assert (config.strategy.type, config.strategy.force, config.strategy.field_manager) == (
        "ServerSideApply",
        True,
        "me",
    )
    assert [r.type for r in config.feedback_rules] == ["WellKnownStatus", "JSONPaths"]
    assert config.feedback_rules[1].json_paths[0].path == ".spec.replicas"


BAD_CONFIGS = [
    (
        "unknown-strategy",
        {"updateStrategy": {"type": "Replace"}},
        "manifestConfigs[0].updateStrategy.type must be one of",
    ),
    (
        "unknown-rule",
        {"feedbackRules": [{"type": "Magic"}]},
        "manifestConfigs[0].feedbackRules[0].type must be",
    ),
    (
        "json-paths-empty",
        {"feedbackRules": [{"type": "JSONPaths"}]},
        "manifestConfigs[0].feedbackRules[0].jsonPaths: a JSONPaths rule",
    ),
    (
        "json-path-without-path",
        {"feedbackRules": [{"type": "JSONPaths", "jsonPaths": [{"name": "x"}]}]},
        "manifestConfigs[0].feedbackRules[0].jsonPaths[0]: name and path are required",
    ),
]


@pytest.mark.parametrize(("extra", "want"), [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS])
def test_malformed_config_is_kept_as_an_error(extra: dict[str, Any], want: str) -> None:
    ident = {"group": "apps", "resource": "deployments", "namespace": "shop", "name": "web"}
    (config,) = parse_manifest_configs([{"resourceIdentifier": ident, **extra}])
    assert config.error is not None and config.error.startswith(want)
    assert find_config([config], META) is config


def test_config_without_resource_is_rejected() -> None:
    with pytest.raises(ManifestError, match=r"manifestConfigs\[0\].resourceIdentifier.resource is required"):
        parse_manifest_configs([{"resourceIdentifier": {"name": "x"}}])


REF = ObjectRef("apps", "v1", "deployments", "shop", "web")
OTHER = ObjectRef("", "v1", "configmaps", "shop", "c")
DELETE_CASES = [
    ("none-is-foreground", None, FOREGROUND, False, False),
    ("foreground", {"propagationPolicy": "Foreground"}, FOREGROUND, False, False),
    ("orphan", {"propagationPolicy": "Orphan"}, ORPHAN, True, True),
    (
        "selectively-orphan",
        {
            "propagationPolicy": "SelectivelyOrphan",
            "selectivelyOrphans": {
                "orphaningRules": [
                    {"group": "apps", "resource": "deployments", "namespace": "shop", "name": "web"}
                ]
            },
        },
        SELECTIVELY_ORPHAN,
        True,
        False,
    ),
]


@pytest.mark.parametrize(
    ("raw", "policy", "orphans_ref", "orphans_other"),
    [c[1:] for c in DELETE_CASES],
    ids=[c[0] for c in DELETE_CASES],
)
def test_delete_option(raw: Any, policy: str, orphans_ref: bool, orphans_other: bool) -> None:
    option = parse_delete_option(raw)
    assert option.policy == policy
    assert option.orphans(REF) is orphans_ref
    assert option.orphans(OTHER) is orphans_other


def test_invalid_delete_option() -> None:
    with pytest.raises(ManifestError, match=r"deleteOption\.propagationPolicy must be one of"):
        parse_delete_option({"propagationPolicy": "Background"})


def test_desired_body_drops_server_fields_and_adds_marker() -> None:
    raw = {
        **CM,
        "metadata": {
            **CM["metadata"],
            "uid": "u",
            "resourceVersion": "7",
            "managedFields": [],
            "labels": {"a": "b"},
        },
        "status": {"x": 1},
    }
    parsed = parse_manifest(0, raw)
    body = desired_body(parsed, parsed.meta("configmaps"), marker_value("rid"))
    assert body == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "ns", "labels": {"a": "b", MARKER_LABEL: "rid"}},
        "data": {"a": "1"},
    }
    # Cluster-scoped: a namespace in the manifest is dropped.
    cluster_scoped = desired_body(parsed, parsed.meta("configmaps", namespaced=False), None)
    assert "namespace" not in cluster_scoped["metadata"]
    assert MARKER_LABEL not in cluster_scoped["metadata"].get("labels", {})


NAME_CASES = [
    # (id, label value kept as is, record name kept as is)
    ("uuid-kept", "0b6a8e2e-3c1a-4c55-9a55-1c0d3b2f6a10", True, True),
    ("uppercase-label-ok-name-hashed", "Bundle-A", True, False),
    ("long-label-hashed-name-ok", "x" * 80, False, True),
    ("slash-hashed", "a/b", False, False),
]


@pytest.mark.parametrize(
    ("resource_id", "label_kept", "name_kept"), [c[1:] for c in NAME_CASES], ids=[c[0] for c in NAME_CASES]
)
def test_marker_and_record_names(resource_id: str, label_kept: bool, name_kept: bool) -> None:
    label = marker_value(resource_id)
    name = records.record_name(resource_id)
    assert len(label) <= 63 and len(name) <= 253
    assert (label == resource_id) is label_kept
    assert (name == resource_id) is name_kept
    assert marker_value(resource_id) == label and records.record_name(resource_id) == name  # stable


@pytest.mark.parametrize(
    ("kind", "resource"),
    [
        ("ConfigMap", "configmaps"),
        ("Ingress", "ingresses"),
        ("NetworkPolicy", "networkpolicies"),
        ("Application", "applications"),
    ],
)
def test_guess_resource(kind: str, resource: str) -> None:
    assert guess_resource(kind) == resource


def test_record_round_trips_through_its_object() -> None:
    record = records.AppliedRecord(
        resource_id="0b6a8e2e-3c1a-4c55-9a55-1c0d3b2f6a10",
        version=4,
        consumer="cluster-1",
        manifests=(META,),
        manifest_configs=({"resourceIdentifier": {"resource": "deployments"}},),
        delete_option={"propagationPolicy": "Orphan"},
        applied_resources=(records.AppliedResource("apps", "v1", "deployments", "shop", "web", "uid-1"),),
    )
    obj = records.to_object(record)
    assert obj["metadata"]["labels"] == {records.CONSUMER_LABEL: "cluster-1"}
    assert records.from_object(obj) == record
