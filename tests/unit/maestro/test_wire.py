"""CloudEvent protobuf <-> domain, query messages, and error status codes.

Cases: spec/status events round-trip through protobuf; attributes use upstream's keys ("ce-"
prefix, bare "contenttype") and value kinds (ce_integer, ce_string, ce_timestamp); readers accept
ints and times as strings and text_data; ints past int32 cannot be encoded; heartbeats carry no
attributes; malformed messages (no attributes, missing prefix, upper case, dedicated or
misnamed core attributes, empty value, proto_data, bad spec version, bad time string, empty id)
raise InvalidArgument naming the attribute; query records and status changes round-trip;
each error kind maps to its gRPC code.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import grpc
import pytest
from google.protobuf import timestamp_pb2

from maestro.api import bundle_events, bundles, errors, events, listing
from maestro.wire import cloudevents, query, status_codes, stubs
from tests.unit.maestro import fixtures as fx

pb = stubs.cloudevent


def test_spec_event_round_trip_and_attribute_encoding() -> None:
    event = bundle_events.spec_event(fx.bundle(3), events.Action.CREATE_REQUEST, now=fx.NOW)
    message = cloudevents.to_pb(event)
    attrs = message.attributes
    assert attrs["ce-resourceversion"].WhichOneof("attr") == "ce_integer"
    assert attrs["ce-resourceid"].ce_string == str(fx.RID)
    assert attrs["ce-time"].WhichOneof("attr") == "ce_timestamp"
    assert attrs["contenttype"].ce_string == "application/json"
    assert "ce-contenttype" not in attrs and message.WhichOneof("data") == "binary_data"
    back = cloudevents.from_pb(pb.CloudEvent.FromString(message.SerializeToString()))
    assert back == event


def test_status_event_round_trip() -> None:
    report = bundles.StatusReport(fx.RID, "cluster1", 2, fx.status(seq=1 << 60), "hub", "h")
    event = bundle_events.status_report_event(report, source="agent", now=fx.NOW)
    assert bundle_events.parse_status_report(cloudevents.from_pb(cloudevents.to_pb(event))) == report


def test_readers_accept_strings_and_text_data() -> None:
    message = pb.CloudEvent(
        id="1", source="hub", spec_version="1.0", type=f"{events.MANIFEST_BUNDLES}.spec.create_request"
    )
    message.attributes["ce-resourceversion"].ce_string = "5"
    message.attributes["ce-time"].ce_string = "2026-11-23T12:00:00.5Z"
    message.attributes["ce-resourceid"].ce_uri_ref = str(fx.RID)
    message.text_data = '{"manifests": []}'
    event = cloudevents.from_pb(message)
    assert events.get_int(event, "resourceversion") == 5
    assert event.time is not None and event.time.microsecond == 500000
    assert event.data == b'{"manifests": []}'


def test_int32_overflow_cannot_be_encoded() -> None:
    with pytest.raises(errors.InvalidArgument, match="int32") as caught:
        cloudevents.to_pb(events.CloudEvent(id="1", source="s", type="t", extensions={"big": 1 << 40}))
    assert caught.value.field == "big"


def test_heartbeat_has_no_attributes_and_decodes() -> None:
    beat = cloudevents.heartbeat_pb()
    assert (beat.type, beat.spec_version, len(beat.attributes)) == (events.HEARTBEAT_TYPE, "1.0", 0)
    assert beat.id and cloudevents.from_pb(beat).is_heartbeat


def message_with(key: str, set_value: str | None = "x", **fields: object) -> pb.CloudEvent:
    message = pb.CloudEvent(
        id="1", source="hub", spec_version="1.0", type=f"{events.MANIFEST_BUNDLES}.spec.create_request"
    )
    message.attributes["ce-clustername"].ce_string = "cluster1"
    if key:
        slot = message.attributes[key]
        if set_value is not None:
            slot.ce_string = set_value
    for name, value in fields.items():
        setattr(message, name, value)
    return message


def no_attributes() -> pb.CloudEvent:
    return pb.CloudEvent(
        id="1", source="hub", spec_version="1.0", type=f"{events.MANIFEST_BUNDLES}.spec.create_request"
    )


def with_proto_data() -> pb.CloudEvent:
    message = message_with("")
    message.proto_data.type_url = "type.googleapis.com/x"
    return message


BAD = [
    ("nil attributes", no_attributes(), "attributes"),
    ("missing prefix", message_with("clustername"), "attributes[clustername]"),
    ("upper case", message_with("ce-ClusterName"), "attributes[ce-ClusterName]"),
    ("ce-id", message_with("ce-id"), "attributes[ce-id]"),
    ("ce-type spoof", message_with("ce-type"), "attributes[ce-type]"),
    ("ce-specversion", message_with("ce-specversion"), "attributes[ce-specversion]"),
    ("ce-datacontenttype", message_with("ce-datacontenttype"), "attributes[ce-datacontenttype]"),
    ("empty value", message_with("ce-resourceid", None), "attributes[ce-resourceid]"),
    ("bad time", message_with("ce-time", "noon"), "attributes[ce-time]"),
    ("proto data", with_proto_data(), "proto_data"),
    ("spec version", message_with("", spec_version="0.3"), "spec_version"),
    ("empty id", message_with("", id=""), "id"),
]


@pytest.mark.parametrize(("message", "field"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_malformed_messages_name_the_attribute(message: pb.CloudEvent, field: str) -> None:
    with pytest.raises(errors.InvalidArgument) as caught:
        cloudevents.from_pb(message)
    assert caught.value.field == field


def test_query_record_round_trip() -> None:
    record = bundles.BundleRecord(
        bundle=fx.bundle(2, deleted=True),
        status=fx.status(seq=9),
        status_version=2,
        status_hash="h",
        status_rev=4,
    )
    message = query.record_to_pb(record)
    assert message.deletion_state == stubs.query.DELETION_STATE_DELETING
    back = query.summary_from_pb(stubs.query.ResourceBundle.FromString(message.SerializeToString())).record()
    assert back.bundle == record.bundle
    assert back.status == record.status and back.status_hash == "h"


def test_status_change_carries_its_resume_token() -> None:
    record = bundles.BundleRecord(bundle=fx.bundle(2), status=fx.status(), status_version=2, status_rev=41)
    change = query.status_change_to_pb(bundles.StatusChange(rev=41, record=record, deleted=True))
    assert (change.resume_token, change.deletion_state) == ("41", stubs.query.DELETION_STATE_DELETED)


def test_status_change_reads_back_as_a_status_update() -> None:
    record = bundles.BundleRecord(bundle=fx.bundle(2), status=fx.status(seq=9), status_version=2)
    change = query.status_change_to_pb(bundles.StatusChange(rev=41, record=record, deleted=True))
    update = query.status_update_from_pb(change)
    assert (update.resume_token, update.deletion, update.version) == ("41", listing.DeletionState.DELETED, 2)
    assert update.metadata() == record.bundle.metadata
    assert update.status() == fx.status(seq=9).to_json() and update.status_sequence == 9


def test_listed_page_keeps_its_tokens_and_leaves_what_was_left_out_empty() -> None:
    record = bundles.BundleRecord(bundle=fx.bundle(2), status=fx.status(seq=9), status_version=2)
    reply = stubs.query.ListResourceBundlesResponse(next_page_token="n", watch_resume_token="7")
    reply.items.append(query.record_to_pb(record))
    reply.items[0].status = b""
    page = query.page_from_pb(reply)
    assert (page.next_page_token, page.watch_resume_token) == ("n", "7")
    (item,) = page.items
    assert (item.deletion, item.status(), item.status_sequence) == (listing.DeletionState.ACTIVE, None, 9)
    assert item.record().bundle == record.bundle and item.record().status is None


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.InvalidArgument("f", "bad"), grpc.StatusCode.INVALID_ARGUMENT),
        (errors.TooLarge("data", 2, 1), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (errors.NotFound("consumer", "x"), grpc.StatusCode.NOT_FOUND),
        (errors.AlreadyExists("consumer", "x"), grpc.StatusCode.ALREADY_EXISTS),
        (errors.Conflict("stale"), grpc.StatusCode.FAILED_PRECONDITION),
    ],
    ids=["invalid", "too-large", "not-found", "exists", "conflict"],
)
def test_status_codes(error: errors.MaestroError, code: grpc.StatusCode) -> None:
    assert status_codes.code_for(error) is code


@pytest.mark.parametrize(
    "when",
    [
        datetime(2026, 11, 23, 12, 0, 0, 123456, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=2))),
    ],
    ids=["micros", "before-epoch", "offset"],
)
def test_fast_timestamp_matches_protobuf(when: datetime) -> None:
    expected = timestamp_pb2.Timestamp()
    expected.FromDatetime(when.astimezone(UTC))
    assert query._timestamp(when) == expected
