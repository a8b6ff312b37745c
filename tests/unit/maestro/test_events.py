"""CloudEvent model and manifest-bundle events (transport-neutral).

Cases: event types parse and format, bad ones name `type`; extension reads accept ints and times
as strings (RFC 3339, Z or offset, nanoseconds) and name the extension when missing or wrong;
the JSON (outbox) form round-trips; spec, status and resync events round-trip through their
builders and parsers; malformed events (unknown type, wrong sub-resource, missing or bad
extension, invalid manifest, over-size data) raise InvalidArgument naming the field.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from maestro.api import bundle_events, bundles, errors, events, ids, statushash
from tests.unit.maestro import fixtures as fx

T = events.MANIFEST_BUNDLES


@pytest.mark.parametrize(
    ("text", "sub", "action"),
    [
        (f"{T}.spec.create_request", events.SubResource.SPEC, events.Action.CREATE_REQUEST),
        (f"{T}.status.resync_request", events.SubResource.STATUS, events.Action.RESYNC_REQUEST),
        (f"{T}.spec.resync_response", events.SubResource.SPEC, events.Action.RESYNC_RESPONSE),
    ],
    ids=["spec-create", "status-resync", "spec-resync-response"],
)
def test_event_type_round_trip(text: str, sub: events.SubResource, action: events.Action) -> None:
    parsed = events.EventType.parse(text)
    assert (parsed.sub_resource, parsed.action, str(parsed)) == (sub, action, text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("short.type", "is not"),
        (f"{T}.metadata.create_request", "neither spec nor status"),
        (f"{T}.spec.patch_request", "unknown"),
        ("io.example.things.v1.widgets.spec.create_request", "not supported"),
    ],
    ids=["too-short", "bad-subresource", "unknown-action", "other-data-type"],
)
def test_bad_event_types(text: str, message: str) -> None:
    with pytest.raises(errors.InvalidArgument, match=message) as caught:
        events.EventType.parse(text)
    assert caught.value.field == "type"


def ev(**extensions: events.ExtensionValue) -> events.CloudEvent:
    return events.CloudEvent(id="1", source="s", type=f"{T}.spec.create_request", extensions=extensions)


@pytest.mark.parametrize(
    ("value", "want"),
    [(3, 3), ("42", 42), (b"7", 7)],
    ids=["int", "string", "bytes"],
)
def test_get_int_accepts_strings(value: events.ExtensionValue, want: int) -> None:
    assert events.get_int(ev(resourceversion=value), "resourceversion") == want


@pytest.mark.parametrize(
    ("value", "want"),
    [
        ("2026-11-23T12:00:00Z", datetime(2026, 11, 23, 12, tzinfo=UTC)),
        ("2026-11-23T14:00:00.123456789+02:00", datetime(2026, 11, 23, 12, 0, 0, 123456, tzinfo=UTC)),
        (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)),
    ],
    ids=["zulu", "offset-nanos", "timestamp"],
)
def test_get_time_accepts_rfc3339(value: events.ExtensionValue, want: datetime) -> None:
    assert events.get_time(ev(deletiontimestamp=value), "deletiontimestamp") == want


@pytest.mark.parametrize(
    ("event", "read", "message"),
    [
        (ev(), lambda e: events.get_str(e, "clustername"), "missing"),
        (ev(resourceversion="v1"), lambda e: events.get_int(e, "resourceversion"), "not an integer"),
        (ev(resourceversion=True), lambda e: events.get_int(e, "resourceversion"), "integer"),
        (ev(deletiontimestamp="yesterday"), lambda e: events.get_time(e, "deletiontimestamp"), "RFC 3339"),
        (
            ev(deletiontimestamp="2026-11-23T12:00:00"),
            lambda e: events.get_time(e, "deletiontimestamp"),
            "time zone",
        ),
        (ev(resourceid="nope"), lambda e: events.get_uuid(e, "resourceid"), "UUID"),
    ],
    ids=["missing", "int-garbage", "bool-as-int", "time-garbage", "time-naive", "bad-uuid"],
)
def test_bad_extensions_name_the_extension(event: events.CloudEvent, read: Any, message: str) -> None:
    with pytest.raises(errors.InvalidArgument, match=message) as caught:
        read(event)
    assert caught.value.field in {"clustername", "resourceversion", "deletiontimestamp", "resourceid"}


def test_json_form_round_trips() -> None:
    event = bundle_events.spec_event(fx.bundle(3), events.Action.UPDATE_REQUEST, now=fx.NOW)
    back = events.from_json(events.to_json(event))
    assert back == event
    deleting = bundle_events.spec_event(fx.bundle(3, deleted=True), events.Action.DELETE_REQUEST, now=fx.NOW)
    back = events.from_json(events.to_json(deleting))
    assert events.get_time(back, events.DELETION_TIMESTAMP) == fx.NOW and not back.data


def test_spec_request_round_trip() -> None:
    for action in bundles.SpecAction:
        request = fx.request(action, 2)
        event = bundle_events.spec_request_event(request, now=fx.NOW)
        assert bundle_events.parse_spec_request(event) == request


def test_spec_event_round_trip_for_the_agent() -> None:
    bundle = fx.bundle(4)
    assert (
        bundle_events.parse_spec_event(bundle_events.spec_event(bundle, events.Action.CREATE_REQUEST))
        == bundle
    )
    deleting = fx.bundle(4, deleted=True)
    parsed = bundle_events.parse_spec_event(bundle_events.spec_event(deleting, events.Action.DELETE_REQUEST))
    assert parsed.deleted_at == fx.NOW and parsed.manifests == []
    leftover = bundle_events.delete_unknown_event(fx.RID, "cluster1", 3, source="maestro", now=fx.NOW)
    assert bundle_events.parse_spec_event(leftover).deleting


SEQUENCE = int(fx.NOW.timestamp()) * 1_000_000_000 + 123


def test_status_round_trips() -> None:
    report = bundles.StatusReport(
        resource_id=fx.RID,
        consumer="cluster1",
        resource_version=2,
        # An agent's clock in nanoseconds: far past int32, so it travels as a string.
        status=fx.status(seq=SEQUENCE),
        original_source="hub",
        status_hash="abc",
    )
    event = bundle_events.status_report_event(report, source="agent-cluster1", now=fx.NOW)
    assert event.extensions["sequenceid"] == str(SEQUENCE)
    assert bundle_events.parse_status_report(event, now_ns=SEQUENCE) == report

    record = bundles.BundleRecord(
        bundle=fx.bundle(2), status=report.status, status_version=2, status_hash="h"
    )
    to_source = bundle_events.status_event(record, source="maestro", now=fx.NOW)
    assert to_source.extensions["originalsource"] == "hub"
    assert orjson.loads(to_source.data) == report.status.to_json()


def test_resync_requests_round_trip() -> None:
    versions = {uuid.UUID(int=1): 3, uuid.UUID(int=2): 1}
    spec = bundle_events.spec_resync_request_event("cluster1", versions, source="agent")
    assert bundle_events.parse_spec_resync_request(spec) == bundle_events.AgentResyncRequest(
        "cluster1", versions
    )
    hashes = {uuid.UUID(int=1): "aa"}
    status = bundle_events.status_resync_request_event(hashes, source="hub")
    assert bundle_events.parse_status_resync_request(status) == bundle_events.SourceResyncRequest(
        "hub", hashes
    )
    empty = bundle_events.status_resync_request_event({}, source="hub")
    assert bundle_events.parse_status_resync_request(empty).hashes == {}


def spec_event(**changes: Any) -> events.CloudEvent:
    base = bundle_events.spec_request_event(fx.request(bundles.SpecAction.CREATE), now=fx.NOW)
    extensions = {**base.extensions, **changes.pop("extensions", {})}
    for name in changes.pop("drop", ()):
        extensions.pop(name)
    return dataclasses.replace(base, extensions=extensions, **changes)


BAD_SPEC_EVENTS = [
    ("unknown type", spec_event(type=f"{T}.spec.patch_request"), "type"),
    ("status type", spec_event(type=f"{T}.status.update_request"), "type"),
    ("no source", spec_event(source=""), "source"),
    ("no resourceid", spec_event(drop=["resourceid"]), "resourceid"),
    ("bad resourceid", spec_event(extensions={"resourceid": "x"}), "resourceid"),
    ("no clustername", spec_event(drop=["clustername"]), "clustername"),
    ("bad version", spec_event(extensions={"resourceversion": "latest"}), "resourceversion"),
    ("negative version", spec_event(extensions={"resourceversion": -1}), "resourceversion"),
    ("bad metadata", spec_event(extensions={"metadata": "{not json"}), "metadata"),
    ("no data", spec_event(data=b""), "data"),
    ("invalid manifest", spec_event(data=b'{"manifests": [{"kind": "A"}]}'), "data.manifests[0].apiVersion"),
]


@pytest.mark.parametrize(
    ("event", "field"), [b[1:] for b in BAD_SPEC_EVENTS], ids=[b[0] for b in BAD_SPEC_EVENTS]
)
def test_bad_spec_events_name_the_field(event: events.CloudEvent, field: str) -> None:
    with pytest.raises(errors.InvalidArgument) as caught:
        bundle_events.parse_spec_request(event)
    assert caught.value.field == field


def test_over_size_spec_event() -> None:
    with pytest.raises(errors.TooLarge):
        bundle_events.parse_spec_request(spec_event(), max_bytes=16)


def status_event(**changes: Any) -> events.CloudEvent:
    report = bundles.StatusReport(fx.RID, "cluster1", 1, fx.status())
    base = bundle_events.status_report_event(report, source="agent")
    extensions = {**base.extensions, **changes.pop("extensions", {})}
    for name in changes.pop("drop", ()):
        extensions.pop(name)
    return dataclasses.replace(base, extensions=extensions, **changes)


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (status_event(drop=["sequenceid"]), "sequenceid"),
        (status_event(extensions={"sequenceid": "abc"}), "sequenceid"),
        (status_event(drop=["resourceversion"]), "resourceversion"),
        (status_event(type=f"{T}.spec.update_request"), "type"),
        (status_event(data=b'{"conditions": {}}'), "data.conditions"),
    ],
    ids=["no-sequence", "bad-sequence", "no-version", "spec-type", "bad-conditions"],
)
def test_bad_status_events_name_the_field(event: events.CloudEvent, field: str) -> None:
    with pytest.raises(errors.InvalidArgument) as caught:
        bundle_events.parse_status_report(event)
    assert caught.value.field == field


def test_status_hash_is_stable_and_go_escaped() -> None:
    one = fx.status()
    reordered = bundles.BundleStatus(
        conditions=[dict(reversed(list(c.items()))) for c in one.conditions],
        resource_status=one.resource_status,
        sequence_id=99,
    )
    assert statushash.status_hash(one) == statushash.status_hash(reordered)
    assert len(statushash.status_hash(one)) == 64
    assert b"\\u003cok\\u003e \\u0026 fine" in statushash.go_json(one.to_json())
    assert statushash.status_hash(one) != statushash.status_hash(fx.status(value="False"))


def test_upstream_resource_id_is_uuid5_of_the_work_key() -> None:
    rid = ids.work_resource_id("hub", "cluster1", "guestbook")
    assert rid.version == 5
    assert rid == uuid.uuid5(
        uuid.NAMESPACE_OID, "hub-manifestworks.work.open-cluster-management.io-cluster1-guestbook"
    )
    assert rid != ids.work_resource_id("hub", "cluster2", "guestbook")
