"""The committed stubs in maestro/wire/gen are exactly what `python -m maestro.wire.generate` makes.

Cases: regenerating from proto/ changes, adds and removes nothing; the stubs import from their
package path and keep upstream's full method names.
"""

from __future__ import annotations

from maestro.wire import generate, stubs


def test_regenerating_gives_identical_files() -> None:
    stale = generate.differences()
    assert not stale, (
        f"maestro/wire/gen is stale or hand-edited: {stale}; run `python -m maestro.wire.generate`"
    )


def test_full_method_names_match_upstream() -> None:
    service = stubs.cloudevent.DESCRIPTOR.services_by_name["CloudEventService"]
    assert service.full_name == "io.cloudevents.v1.CloudEventService"
    assert [m.name for m in service.methods] == ["Publish", "Subscribe"]
    assert stubs.query.DESCRIPTOR.services_by_name["MaestroQuery"].full_name == stubs.QUERY_SERVICE


def test_cloudevent_field_numbers_match_upstream() -> None:
    fields = {f.name: f.number for f in stubs.cloudevent.CloudEvent.DESCRIPTOR.fields}
    assert fields == {
        "id": 1,
        "source": 2,
        "spec_version": 3,
        "type": 4,
        "attributes": 5,
        "binary_data": 6,
        "text_data": 7,
        "proto_data": 8,
    }
    attr = {f.name: f.number for f in stubs.cloudevent.CloudEventAttributeValue.DESCRIPTOR.fields}
    assert attr == {
        "ce_boolean": 1,
        "ce_integer": 2,
        "ce_string": 3,
        "ce_bytes": 4,
        "ce_uri": 5,
        "ce_uri_ref": 6,
        "ce_timestamp": 7,
    }
    sub = {f.name: f.number for f in stubs.cloudevent.SubscriptionRequest.DESCRIPTOR.fields}
    assert sub == {"source": 1, "cluster_name": 2, "data_type": 3}
