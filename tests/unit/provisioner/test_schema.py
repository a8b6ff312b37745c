"""Checking values against structural schemas offline, and schemas for being structural.

Cases: claims against the shipped definition (valid, missing required fields, enums, types,
minimum, unknown fields, labels that are not strings), every message naming the field path and a
fix; defaults applied as the API server does (only under present objects); the structural checks
(missing type, array without items, properties with additionalProperties, forbidden keywords,
junctors carrying types).
"""

from __future__ import annotations

from typing import Any

import pytest

from provisioner import schema, xrd

from . import builders


def claim_spec_schema() -> dict[str, Any]:
    crd = xrd.generated_crds(builders.definition())[1]
    spec: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return spec


def check(parameters: dict[str, Any], **spec: Any) -> list[str]:
    value = {"parameters": parameters, **spec}
    return [str(p) for p in schema.validate(value, claim_spec_schema(), "spec")]


APPS = {"repoURL": "file:///srv/apps"}

CASES = [
    ("valid", {"apps": APPS, "nodeCount": 3, "labels": {"env": "dev"}}, {}, []),
    (
        "apps.repoURL missing",
        {"apps": {"path": "x"}},
        {},
        [
            "spec.parameters.apps.repoURL: is required but missing — "
            "set it (the git repository URL of the cluster's apps)"
        ],
    ),
    (
        "apps missing",
        {},
        {},
        [
            "spec.parameters.apps: is required but missing — "
            "set it (the git repository the cluster's own Argo CD syncs (the worker-apps Application))"
        ],
    ),
    (
        "bad provider",
        {"apps": APPS, "provider": "gcp"},
        {},
        [
            "spec.parameters.provider: is 'gcp', not one of local, aws, simulated — "
            "use one of local, aws, simulated"
        ],
    ),
    (
        "node count as a string",
        {"apps": APPS, "nodeCount": "3"},
        {},
        [
            "spec.parameters.nodeCount: is a string ('3'), expected an integer — "
            "write a whole number, without quotes"
        ],
    ),
    (
        "node count zero",
        {"apps": APPS, "nodeCount": 0},
        {},
        ["spec.parameters.nodeCount: is 0, below the minimum 1 — use 1 or more"],
    ),
    (
        "label value not a string",
        {"apps": APPS, "labels": {"tier.example.org/level": 1}},
        {},
        [
            'spec.parameters.labels["tier.example.org/level"]: is a number (1), expected a string — '
            "quote the value"
        ],
    ),
    (
        "unknown parameter",
        {"apps": APPS, "regoin": "eu"},
        {},
        [
            "spec.parameters.regoin: is not a known field — remove it or check its spelling (known: "
            "agentCertificateLifetimeSeconds, agentPermissions, apps, argocd, instanceType, labels, "
            "nodeCount, provider, region, version)"
        ],
    ),
    (
        "empty repoURL",
        {"apps": {"repoURL": ""}},
        {},
        ["spec.parameters.apps.repoURL: is 0 characters long, shorter than 1 — give it a value"],
    ),
    (
        "bad update policy",
        {"apps": APPS},
        {"compositionUpdatePolicy": "Sometimes"},
        [
            "spec.compositionUpdatePolicy: is 'Sometimes', not one of Automatic, Manual — "
            "use one of Automatic, Manual"
        ],
    ),
    (
        "composite-only field on a claim",
        {"apps": APPS},
        {"deletionPolicy": "Orphan"},
        [
            "spec.deletionPolicy: is not a known field — remove it or check its spelling (known: "
            "compositionRef, compositionRevisionRef, compositionSelector, compositionUpdatePolicy, "
            "parameters, resourceRef, writeConnectionSecretToRef)"
        ],
    ),
    (
        "null",
        {"apps": APPS, "region": None},
        {},
        ["spec.parameters.region: is null — give it a value or remove the field"],
    ),
]


@pytest.mark.parametrize(("parameters", "spec", "want"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_claims_against_the_worker_cluster_schema(
    parameters: dict[str, Any], spec: dict[str, Any], want: list[str]
) -> None:
    assert check(parameters, **spec) == want


def test_defaults_apply_under_present_objects_only() -> None:
    spec_schema = claim_spec_schema()
    assert schema.apply_defaults({"parameters": {"apps": {"repoURL": "r"}}}, spec_schema) == {
        "parameters": {
            "provider": "local",
            "apps": {"repoURL": "r", "path": "apps", "targetRevision": "HEAD"},
        },
        "compositionUpdatePolicy": "Automatic",
    }
    # No apps: no apps defaults (the API server does not invent the object).
    assert schema.apply_defaults({"parameters": {}}, spec_schema)["parameters"] == {"provider": "local"}


def test_defaults_do_not_touch_the_input() -> None:
    value = {"parameters": {"apps": {"repoURL": "r"}}}
    schema.apply_defaults(value, claim_spec_schema())
    assert value == {"parameters": {"apps": {"repoURL": "r"}}}


def test_preserve_unknown_fields_and_int_or_string() -> None:
    node = {
        "type": "object",
        "properties": {
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "port": {"x-kubernetes-int-or-string": True},
        },
    }
    assert schema.validate({"free": {"any": {"thing": 1}}, "port": "http"}, node) == []
    assert [str(p) for p in schema.validate({"port": 1.5}, node)] == [
        "port: is a number (1.5), expected an integer or a string — fix its value"
    ]


STRUCTURAL = [
    ("fine", {"type": "object", "properties": {"a": {"type": "string"}}}, []),
    (
        "missing type",
        {"type": "object", "properties": {"a": {"minimum": 1}}},
        ["root.properties.a.type: is missing"],
    ),
    (
        "bad type",
        {"type": "object", "properties": {"a": {"type": "float"}}},
        ["root.properties.a.type: is 'float'"],
    ),
    ("array without items", {"type": "array"}, ["root.items: is missing for an array"]),
    (
        "properties and additionalProperties",
        {"type": "object", "properties": {}, "additionalProperties": {"type": "string"}},
        ["root.additionalProperties: is set together with properties"],
    ),
    ("$ref", {"type": "object", "$ref": "#/x"}, ["root.$ref: is not allowed in a structural schema"]),
    (
        "type inside a junctor",
        {"type": "string", "anyOf": [{"type": "string"}]},
        ["root.anyOf[0].type: is not allowed inside allOf/anyOf/oneOf/not"],
    ),
    (
        "uniqueItems",
        {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        ["root.uniqueItems: may not be true in a CRD"],
    ),
    ("int-or-string needs no type", {"x-kubernetes-int-or-string": True}, []),
]


@pytest.mark.parametrize(("node", "want"), [c[1:] for c in STRUCTURAL], ids=[c[0] for c in STRUCTURAL])
def test_structural_problems(node: dict[str, Any], want: list[str]) -> None:
    assert [f"{p.field}: {p.message}" for p in schema.structural_problems(node, "root")] == want
