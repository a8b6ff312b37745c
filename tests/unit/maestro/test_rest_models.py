"""Upstream Maestro's REST documents as fleetplane writes them, and the byte-bounded page cut."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from maestro.api import bundles, consumers, errors, rest_models
from maestro.storage import budget

_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_an_error_has_upstreams_fields() -> None:
    assert rest_models.error(rest_models.Codes.NOT_FOUND, "no such consumer", "op-1") == {
        "kind": "Error",
        "id": "7",
        "href": "/api/maestro/v1/errors/7",
        "code": "maestro-7",
        "reason": "no such consumer",
        "operation_id": "op-1",
    }


def test_a_consumer_and_a_bundle_have_upstreams_shapes() -> None:
    c = consumers.Consumer("c1", {"env": "dev"}, consumers.Placement("t", 0), _AT, 3, "s")
    assert rest_models.consumer(c) == {
        "id": "c1",
        "kind": "Consumer",
        "href": "/api/maestro/v1/consumers/c1",
        "name": "c1",
        "labels": {"env": "dev"},
        "created_at": "2026-01-02T03:04:05Z",
        "updated_at": "2026-01-02T03:04:05Z",
    }
    rid = uuid.uuid4()
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m", "namespace": "default"}}
    record = bundles.BundleRecord(
        bundles.ResourceBundle(
            rid, "c1", "hub", 2, [manifest], metadata={"name": "work-1"}, created_at=_AT, updated_at=_AT
        ),
        bundles.BundleStatus(conditions=[{"type": "Applied", "status": "True"}], sequence_id=9),
        status_version=2,
    )
    doc = rest_models.resource_bundle(record)
    assert doc["id"] == str(rid) and doc["kind"] == "ResourceBundle"
    assert doc["href"] == f"/api/maestro/v1/resource-bundles/{rid}"
    assert (doc["name"], doc["consumer_name"], doc["version"]) == ("work-1", "c1", 2)
    assert doc["manifests"] == [manifest]
    assert doc["status"] == {
        "ObservedVersion": 2,
        "SequenceID": "9",
        "conditions": [{"type": "Applied", "status": "True"}],
        "resourceStatus": [],
    }
    assert "deleted_at" not in doc


def test_paging_parameters_default_and_bounds() -> None:
    assert rest_models.page_request(None, None) == rest_models.PageRequest(1, 100)
    assert rest_models.page_request("3", "400").offset == 800
    with pytest.raises(errors.InvalidArgument, match="page"):
        rest_models.page_request("0", None)
    with pytest.raises(errors.InvalidArgument, match="size"):
        rest_models.page_request(None, "ten")


def test_bodies_are_checked_naming_the_field() -> None:
    assert rest_models.consumer_create({"name": "c1", "labels": {"a": "b"}}) == ("c1", {"a": "b"})
    with pytest.raises(errors.InvalidArgument, match="name"):
        rest_models.consumer_create({"labels": {}})
    with pytest.raises(errors.InvalidArgument, match="labels"):
        rest_models.consumer_patch({"labels": {"a": 1}})
    with pytest.raises(errors.InvalidArgument, match="body"):
        rest_models.consumer_patch([])


def test_a_page_stops_at_its_budget_but_holds_one_row_at_least() -> None:
    # rows as the bounded query returns them: (key, bytes of the page up to and including it)
    rows = [("a", 400), ("b", 800), ("c", 1200)]
    assert budget.cut(rows, 10, 1000) == ([("a",), ("b",)], True)
    assert budget.cut([("big", 5000), ("next", 5100)], 10, 1000) == ([("big",)], True)
    assert budget.cut(rows, 2, 10_000) == ([("a",), ("b",)], True)
    assert budget.cut(rows[:2], 5, 10_000) == ([("a",), ("b",)], False)
    assert budget.cut([], 5, 10) == ([], False)
