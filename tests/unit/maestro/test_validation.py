"""ManifestBundle / status validation: every bad payload is an InvalidArgument naming its field.

Cases: not JSON, not an object, no/empty manifests, a manifest without apiVersion, kind or
metadata.name, bad deleteOption policy, bad updateStrategy, bad feedbackRules (unknown type,
JSONPaths without paths), resourceIdentifier without name, over-size payload (TooLarge); a full
valid bundle passes unchanged; status with malformed conditions.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from maestro.api import errors, validation
from tests.unit.maestro import fixtures as fx


def config(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "resourceIdentifier": {"group": "argoproj.io", "resource": "applications", "name": "guestbook"},
        "feedbackRules": [{"type": "JSONPaths", "jsonPaths": [{"name": "health", "path": ".status.health"}]}],
        "updateStrategy": {
            "type": "ServerSideApply",
            "serverSideApply": {"force": True, "fieldManager": "maestro"},
        },
    }
    return {**base, **overrides}


VALID = {
    "manifests": [fx.manifest()],
    "deleteOption": {"propagationPolicy": "Orphan"},
    "manifestConfigs": [config()],
    "executer": {"subject": {"type": "ServiceAccount"}},
}

BAD = [
    ("not json", b"{nope", "data", "valid JSON"),
    ("empty", b"", "data", "empty"),
    ("not an object", b"[1]", "data", "object"),
    ("no manifests", {}, "data.manifests", "array"),
    ("empty manifests", {"manifests": []}, "data.manifests", "empty"),
    ("manifest not object", {"manifests": ["x"]}, "data.manifests[0]", "object"),
    (
        "no apiVersion",
        {"manifests": [{"kind": "A", "metadata": {"name": "a"}}]},
        "data.manifests[0].apiVersion",
        "",
    ),
    (
        "no kind",
        {"manifests": [{"apiVersion": "v1", "metadata": {"name": "a"}}]},
        "data.manifests[0].kind",
        "",
    ),
    (
        "no metadata",
        {"manifests": [{"apiVersion": "v1", "kind": "A"}]},
        "data.manifests[0].metadata",
        "object",
    ),
    (
        "no name",
        {"manifests": [fx.manifest(), {"apiVersion": "v1", "kind": "A", "metadata": {}}]},
        "data.manifests[1].metadata.name",
        "",
    ),
    (
        "bad propagation policy",
        {**VALID, "deleteOption": {"propagationPolicy": "Background"}},
        "data.deleteOption.propagationPolicy",
        "Foreground",
    ),
    (
        "bad update strategy",
        {**VALID, "manifestConfigs": [config(updateStrategy={"type": "Replace"})]},
        "data.manifestConfigs[0].updateStrategy.type",
        "ServerSideApply",
    ),
    (
        "bad ssa force",
        {
            **VALID,
            "manifestConfigs": [
                config(updateStrategy={"type": "ServerSideApply", "serverSideApply": {"force": "yes"}})
            ],
        },
        "data.manifestConfigs[0].updateStrategy.serverSideApply.force",
        "true or false",
    ),
    (
        "unknown feedback rule",
        {**VALID, "manifestConfigs": [config(feedbackRules=[{"type": "Everything"}])]},
        "data.manifestConfigs[0].feedbackRules[0].type",
        "WellKnownStatus",
    ),
    (
        "json paths missing",
        {**VALID, "manifestConfigs": [config(feedbackRules=[{"type": "JSONPaths"}])]},
        "data.manifestConfigs[0].feedbackRules[0].jsonPaths",
        "empty",
    ),
    (
        "identifier without name",
        {**VALID, "manifestConfigs": [config(resourceIdentifier={"resource": "applications"})]},
        "data.manifestConfigs[0].resourceIdentifier.name",
        "",
    ),
]


@pytest.mark.parametrize(("payload", "field", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_invalid_bundles_name_the_field(payload: Any, field: str, message: str) -> None:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    with pytest.raises(errors.InvalidArgument) as caught:
        validation.parse_manifest_bundle(raw)
    assert caught.value.field == field
    assert message in str(caught.value)


def test_over_size_bundle_is_too_large() -> None:
    raw = orjson.dumps({"manifests": [fx.manifest(blob="x" * 2048)]})
    with pytest.raises(errors.TooLarge) as caught:
        validation.parse_manifest_bundle(raw, max_bytes=1024)
    assert (caught.value.field, caught.value.limit, caught.value.size) == ("data", 1024, len(raw))
    assert isinstance(caught.value, errors.InvalidArgument) and caught.value.fix


def test_valid_bundle_round_trips() -> None:
    parsed = validation.parse_manifest_bundle(orjson.dumps(VALID))
    assert parsed.to_json() == VALID


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"conditions": "Applied"}, "data.conditions"),
        ({"conditions": [{"status": "True"}]}, "data.conditions[0].type"),
        ({"conditions": [{"type": "Applied"}]}, "data.conditions[0].status"),
        ({"resourceStatus": [1]}, "data.resourceStatus[0]"),
    ],
    ids=["conditions-not-list", "condition-no-type", "condition-no-status", "resource-status-not-object"],
)
def test_invalid_status_names_the_field(payload: dict[str, Any], field: str) -> None:
    with pytest.raises(errors.InvalidArgument) as caught:
        validation.parse_bundle_status(orjson.dumps(payload), sequence_id=1)
    assert caught.value.field == field
