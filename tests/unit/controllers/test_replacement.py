"""A mirror written whole over the stored one: the plan's metadata and spec at the stored version,
and what others wrote kept (status when none goes with the write, a sync operation, a refresh
request); whatever else the stored object had is left out, so the hub drops it."""

from __future__ import annotations

from controllers import contract
from controllers.propagation.replacement import replacement


def _stored() -> dict:
    return {
        "metadata": {
            "name": "c1-app",
            "resourceVersion": "42",
            "labels": {"dropped": "x", "app": "a"},
            "annotations": {contract.ANNOTATION_REFRESH: "hard", "example.com/dropped": "y"},
        },
        "spec": {"source": {"path": "old", "helm": {"valueFiles": ["a.yaml"]}}},
        "status": {"sync": {"status": "Synced"}},
        "operation": {"sync": {"revision": "abc"}},
    }


def test_the_plan_replaces_metadata_and_spec_at_the_stored_version() -> None:
    mirror = {
        "metadata": {"name": "c1-app", "labels": {"app": "a"}, "annotations": {"k": "v"}},
        "spec": {"source": {"path": "new"}},
    }

    out = replacement(mirror, _stored())

    assert out["metadata"]["resourceVersion"] == "42"
    assert out["metadata"]["labels"] == {"app": "a"}
    assert out["metadata"]["annotations"] == {contract.ANNOTATION_REFRESH: "hard", "k": "v"}
    assert out["spec"] == {"source": {"path": "new"}}
    assert out["status"] == {"sync": {"status": "Synced"}}
    assert out["operation"] == {"sync": {"revision": "abc"}}
    assert "resourceVersion" not in mirror["metadata"], "the plan's mirror is not changed"


def test_a_status_known_to_the_write_goes_with_it() -> None:
    mirror = {"metadata": {"name": "c1-app"}, "spec": {}, "status": {"sync": {"status": "OutOfSync"}}}

    assert replacement(mirror, _stored())["status"] == {"sync": {"status": "OutOfSync"}}
