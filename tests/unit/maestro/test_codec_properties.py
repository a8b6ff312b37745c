"""Properties of the CloudEvent codecs and the bundle decoders, over generated input.

Every well-formed event survives each of its three forms unchanged: the JSON form the outbox keeps,
the gRPC message sources send, the Kafka headers agents read (as text). Any input at all — bytes
posing as the JSON form, gRPC messages with random attributes of random types, events of random
types carrying random JSON — is either decoded or refused with an `InvalidArgument` naming a field;
no other exception escapes, whatever the bytes.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maestro.api import bundle_events, errors, events
from maestro.transport import binding, cloudevents
from maestro.transport.messages import Incoming
from maestro.wire import cloudevents as wire_events
from maestro.wire import stubs

pb = stubs.cloudevent
BOUNDED = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text as the wire forms carry it: any character but a lone surrogate (not encodable in UTF-8).
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
names = st.from_regex(r"\A[a-z0-9]{1,12}\Z").filter(
    lambda n: (
        n not in {"id", "source", "type", "specversion", "time", "datacontenttype", "data", "data_base64"}
    )
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
times = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC))


@st.composite
def cloud_events(
    draw: st.DrawFn, extension_values: st.SearchStrategy[Any] | None = None
) -> events.CloudEvent:
    values = (
        text | st.booleans() | st.integers(-(2**31), 2**31 - 1)
        if extension_values is None
        else extension_values
    )
    data = draw(st.none() | json_values)
    return events.CloudEvent(
        id=draw(text.filter(bool)),
        source=draw(text.filter(bool)),
        type=draw(text.filter(bool)),
        time=draw(st.none() | times),
        extensions=draw(st.dictionaries(names, values, max_size=6)),
        data=b"" if data is None else orjson.dumps(data),
        data_content_type=events.JSON_CONTENT_TYPE if data is not None else None,
    )


@BOUNDED
@given(cloud_events())
def test_the_json_form_round_trips(event: events.CloudEvent) -> None:
    assert events.from_json(events.to_json(event)) == event


@BOUNDED
# The gRPC form refuses an event without attributes (the API needs its resource id, cluster, ...).
@given(cloud_events().filter(lambda e: bool(e.extensions or e.time or e.data_content_type)))
def test_the_grpc_form_round_trips(event: events.CloudEvent) -> None:
    decoded = wire_events.from_pb(pb.CloudEvent.FromString(wire_events.to_pb(event).SerializeToString()))
    assert decoded == event


@BOUNDED
@given(cloud_events(text))
def test_the_kafka_form_keeps_every_attribute_as_text(event: events.CloudEvent) -> None:
    out = cloudevents.to_message(event, topic="t.spec.1", key="k")
    attributes, content_type = binding.decode(out.headers)
    back = cloudevents.from_message(Incoming(out.topic, 0, 0, out.key, attributes, content_type, out.value))
    assert back == event


def _refused_or_decoded(decode: Any, *args: Any, **kwargs: Any) -> None:
    try:
        decode(*args, **kwargs)
    except errors.InvalidArgument as exc:
        assert exc.field and exc.message, "a refusal names the field and what is wrong"
    except errors.MaestroError:
        pass


raw_events = st.one_of(
    st.binary(max_size=300),
    json_values.map(orjson.dumps),
    st.dictionaries(text, json_values).map(orjson.dumps),
    # The fields the decoder reads itself, with values of any kind.
    st.dictionaries(
        st.sampled_from(
            ["id", "source", "type", "specversion", "time", "datacontenttype", "data", "data_base64"]
        ),
        json_values,
    ).map(orjson.dumps),
)


@BOUNDED
@given(raw_events)
def test_any_bytes_are_an_event_or_a_clear_refusal(raw: bytes) -> None:
    _refused_or_decoded(events.from_json, raw)


attribute_values = st.one_of(
    st.builds(lambda v: pb.CloudEventAttributeValue(ce_string=v), text),
    st.builds(lambda v: pb.CloudEventAttributeValue(ce_integer=v), st.integers(-(2**31), 2**31 - 1)),
    st.builds(lambda v: pb.CloudEventAttributeValue(ce_boolean=v), st.booleans()),
    st.builds(lambda v: pb.CloudEventAttributeValue(ce_bytes=v), st.binary(max_size=20)),
    st.builds(lambda v: pb.CloudEventAttributeValue(ce_uri=v), text),
    st.just(pb.CloudEventAttributeValue()),
)
known = st.sampled_from(
    [
        events.RESOURCE_ID,
        events.RESOURCE_VERSION,
        events.CLUSTER_NAME,
        events.ORIGINAL_SOURCE,
        events.SEQUENCE_ID,
        events.DELETION_TIMESTAMP,
        events.STATUS_HASH,
        events.METADATA,
        "time",
    ]
)
event_types = st.one_of(
    text,
    st.builds(
        lambda sub, action: f"{events.MANIFEST_BUNDLES}.{sub}.{action}",
        st.sampled_from(["spec", "status", "other"]),
        st.sampled_from([*(a.value for a in events.Action), "nothing"]),
    ),
)


@st.composite
def grpc_events(draw: st.DrawFn) -> pb.CloudEvent:
    message = pb.CloudEvent(
        id=draw(text),
        source=draw(text),
        spec_version=draw(st.sampled_from(["1.0", "", "0.3"])),
        type=draw(event_types),
    )
    keys = st.one_of(known.map(lambda k: f"ce-{k}"), text, st.just("contenttype"))
    for key, value in draw(st.dictionaries(keys, attribute_values, max_size=8)).items():
        message.attributes[key].CopyFrom(value)
    if draw(st.booleans()):
        message.attributes["ce-resourceid"].ce_string = str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1))))
    data = draw(st.one_of(st.none(), st.binary(max_size=200), json_values.map(orjson.dumps)))
    if data is not None:
        message.binary_data = data
    return message


@BOUNDED
@given(grpc_events())
def test_any_grpc_event_is_decoded_or_refused_naming_a_field(message: pb.CloudEvent) -> None:
    def decode(m: pb.CloudEvent) -> None:
        event = wire_events.from_pb(m)
        _refused_or_decoded(bundle_events.parse_spec_request, event)
        _refused_or_decoded(bundle_events.parse_status_report, event)

    _refused_or_decoded(decode, message)


@BOUNDED
@given(
    cloud_events(text | st.integers(-(2**70), 2**70) | st.booleans()), st.sampled_from(list(events.Action))
)
def test_any_bundle_event_is_decoded_or_refused_naming_a_field(
    event: events.CloudEvent, action: events.Action
) -> None:
    for sub in events.SubResource:
        typed = events.CloudEvent(
            id=event.id,
            source=event.source,
            type=str(events.EventType(sub, action)),
            time=event.time,
            extensions=event.extensions,
            data=event.data,
            data_content_type=event.data_content_type,
        )
        for decode in (
            bundle_events.parse_spec_event,
            bundle_events.parse_status_report,
            bundle_events.parse_spec_request,
            bundle_events.parse_spec_resync_request,
            bundle_events.parse_status_resync_request,
        ):
            _refused_or_decoded(decode, typed)
