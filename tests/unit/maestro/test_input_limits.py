"""Hostile or broken input is refused alone, naming the field and the fix, before storage sees it.

Cases: a NUL character or an over-size value in every CloudEvent attribute and extension (name
and value), in the `metadata` extension's labels and annotations, in a spec's manifests and in a
status's conditions and resource statuses, for spec requests, status reports and resync requests;
the limits' boundaries (exactly at the limit passes, one byte more does not); the shape of the
metadata (labels of strings, an int64 generation); the sequence id bound of a status report;
query filters, resume tokens and page sizes; consumer names with a trailing newline.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import orjson
import pytest

from maestro.api import bundle_events, bundles, consumers, errors, events, queries, validation
from tests.unit.maestro import fixtures as fx

NUL = "\x00"
ATTR = validation.MAX_ATTRIBUTE_BYTES
NOW_NS = int(fx.NOW.timestamp()) * 1_000_000_000


def spec_event(**changes: Any) -> events.CloudEvent:
    request = fx.request(bundles.SpecAction.CREATE)
    base = bundle_events.spec_request_event(request, now=fx.NOW)
    extensions = {**base.extensions, **changes.pop("extensions", {})}
    return dataclasses.replace(base, extensions=extensions, **changes)


def status_event(**changes: Any) -> events.CloudEvent:
    report = bundles.StatusReport(fx.RID, "cluster1", 1, fx.status(seq=NOW_NS))
    base = bundle_events.status_report_event(report, source="agent-cluster1", now=fx.NOW)
    extensions = {**base.extensions, **changes.pop("extensions", {})}
    return dataclasses.replace(base, extensions=extensions, **changes)


def metadata(**meta: Any) -> dict[str, str]:
    return {"metadata": orjson.dumps({"name": "work1", **meta}).decode()}


def parse_spec(event: events.CloudEvent) -> None:
    bundle_events.parse_spec_request(event)


def parse_status(event: events.CloudEvent) -> None:
    bundle_events.parse_status_report(event, now_ns=NOW_NS)


# (case, event, parser, field named, error kind)
REFUSED = [
    ("id NUL", spec_event(id=f"a{NUL}b"), parse_spec, "id", errors.InvalidArgument),
    ("source NUL", spec_event(source=f"hub{NUL}"), parse_spec, "source", errors.InvalidArgument),
    ("source over", spec_event(source="s" * (ATTR + 1)), parse_spec, "source", errors.TooLarge),
    ("type NUL", spec_event(type=f"{NUL}x"), parse_spec, "type", errors.InvalidArgument),
    ("type over", spec_event(type="t" * (ATTR + 1)), parse_spec, "type", errors.TooLarge),
    ("content type NUL", spec_event(data_content_type=f"a{NUL}"), parse_spec, "datacontenttype", None),
    ("clustername NUL", spec_event(extensions={"clustername": f"c{NUL}"}), parse_spec, "clustername", None),
    (
        "clustername over",
        spec_event(extensions={"clustername": "c" * (ATTR + 1)}),
        parse_spec,
        "clustername",
        errors.TooLarge,
    ),
    ("unknown extension NUL", spec_event(extensions={"other": NUL}), parse_spec, "other", None),
    (
        "unknown extension over",
        spec_event(extensions={"other": "o" * (ATTR + 1)}),
        parse_spec,
        "other",
        errors.TooLarge,
    ),
    ("bytes extension NUL", spec_event(extensions={"other": b"\x00"}), parse_spec, "other", None),
    (
        "extension name NUL",
        spec_event(extensions={f"x{NUL}": "v"}),
        parse_spec,
        "extension 'x\\x00'",
        errors.InvalidArgument,
    ),
    (
        "extension name over",
        spec_event(extensions={"n" * 65: "v"}),
        parse_spec,
        f"extension {'n' * 64!r}"[:-1] + "...'",
        errors.TooLarge,
    ),
    (
        "too many extensions",
        spec_event(extensions={f"x{i}": "v" for i in range(validation.MAX_EXTENSIONS)}),
        parse_spec,
        "attributes",
        errors.InvalidArgument,
    ),
    (
        "metadata over",
        spec_event(extensions=metadata(annotations={"a": "x" * validation.MAX_METADATA_BYTES})),
        parse_spec,
        "metadata",
        errors.TooLarge,
    ),
    ("metadata NUL", spec_event(extensions=metadata(uid=NUL)), parse_spec, "metadata.uid", None),
    (
        "label value NUL",
        spec_event(extensions=metadata(labels={"app": f"a{NUL}"})),
        parse_spec,
        "metadata.labels.app",
        None,
    ),
    (
        "label key NUL",
        spec_event(extensions=metadata(labels={f"a{NUL}": "v"})),
        parse_spec,
        "metadata.labels",
        None,
    ),
    (
        "annotation NUL",
        spec_event(extensions=metadata(annotations={"note": f"{NUL}"})),
        parse_spec,
        "metadata.annotations.note",
        None,
    ),
    (
        "label value over",
        spec_event(extensions=metadata(labels={"app": "v" * (validation.MAX_LABEL_BYTES + 1)})),
        parse_spec,
        "metadata.labels['app']",
        errors.TooLarge,
    ),
    (
        "label not a string",
        spec_event(extensions=metadata(labels={"app": 1})),
        parse_spec,
        "metadata.labels",
        None,
    ),
    (
        "annotations not an object",
        spec_event(extensions=metadata(annotations=["a"])),
        parse_spec,
        "metadata.annotations",
        None,
    ),
    (
        "generation negative",
        spec_event(extensions=metadata(generation=-1)),
        parse_spec,
        "metadata.generation",
        None,
    ),
    (
        "generation past int64",
        spec_event(extensions=metadata(generation=1 << 63)),
        parse_spec,
        "metadata.generation",
        None,
    ),
    (
        "generation a string",
        spec_event(extensions=metadata(generation="1")),
        parse_spec,
        "metadata.generation",
        None,
    ),
    (
        "resourceVersion a number",
        spec_event(extensions=metadata(resourceVersion=5)),
        parse_spec,
        "metadata.resourceVersion",
        None,
    ),
    (
        "resource version past int64",
        spec_event(extensions={"resourceversion": str(1 << 63)}),
        parse_spec,
        "resourceversion",
        None,
    ),
    (
        "manifest NUL",
        spec_event(data=orjson.dumps({"manifests": [fx.manifest(note=NUL)]})),
        parse_spec,
        "data.manifests[0].spec.note",
        None,
    ),
    (
        "manifest name NUL",
        spec_event(data=orjson.dumps({"manifests": [fx.manifest(name=f"g{NUL}")]})),
        parse_spec,
        "data.manifests[0].metadata.name",
        None,
    ),
    ("status source NUL", status_event(source=f"agent{NUL}"), parse_status, "source", None),
    (
        "status hash NUL",
        status_event(extensions={"statushash": NUL}),
        parse_status,
        "statushash",
        None,
    ),
    (
        "status original source over",
        status_event(extensions={"originalsource": "o" * (ATTR + 1)}),
        parse_status,
        "originalsource",
        errors.TooLarge,
    ),
    (
        "status clustername not a name",
        status_event(extensions={"clustername": "Not A Name"}),
        parse_status,
        "clustername",
        None,
    ),
    (
        "condition message NUL",
        status_event(data=orjson.dumps({"conditions": [{"type": "A", "status": "True", "message": NUL}]})),
        parse_status,
        "data.conditions[0].message",
        None,
    ),
    (
        "resource status key NUL",
        status_event(data=orjson.dumps({"resourceStatus": [{"statusFeedback": {f"k{NUL}": 1}}]})),
        parse_status,
        "data.resourceStatus[0].statusFeedback",
        None,
    ),
    (
        "sequence 2^63-1",
        status_event(extensions={"sequenceid": str((1 << 63) - 1)}),
        parse_status,
        "sequenceid",
        None,
    ),
    (
        "sequence past int64",
        status_event(extensions={"sequenceid": str(1 << 63)}),
        parse_status,
        "sequenceid",
        None,
    ),
    (
        "sequence negative",
        status_event(extensions={"sequenceid": "-1"}),
        parse_status,
        "sequenceid",
        None,
    ),
    (
        "sequence past the margin",
        status_event(extensions={"sequenceid": str(NOW_NS + 300 * 10**9 + 1)}),
        parse_status,
        "sequenceid",
        None,
    ),
    (
        "status version past int64",
        status_event(extensions={"resourceversion": str(1 << 63)}),
        parse_status,
        "resourceversion",
        None,
    ),
]


@pytest.mark.parametrize(
    ("event", "parse", "field", "kind"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
def test_each_bad_value_is_refused_naming_its_field_and_the_fix(
    event: events.CloudEvent, parse: Any, field: str, kind: type[errors.InvalidArgument] | None
) -> None:
    with pytest.raises(errors.InvalidArgument) as caught:
        parse(event)
    assert caught.value.field == field
    if kind is not None:
        assert type(caught.value) is kind
    text = str(caught.value)
    if "NUL" in text:
        assert "(remove it)" in text
    if isinstance(caught.value, errors.TooLarge):
        assert "(shorten it)" in text
    assert len(text) < 600, "an error quotes at most a little of what was sent"


ACCEPTED = [
    ("source at the limit", spec_event(source="s" * ATTR), parse_spec),
    ("multi-byte source at the limit", spec_event(source="é" * (ATTR // 2)), parse_spec),
    ("clustername of 253", spec_event(extensions={"clustername": "c" * 253}), parse_spec),
    (
        "metadata with labels, annotations, generation",
        spec_event(
            extensions=metadata(
                labels={"app": "web"}, annotations={"n": "é"}, generation=(1 << 63) - 1, resourceVersion="7"
            )
        ),
        parse_spec,
    ),
    (
        "an escaped backslash before u0000 is no NUL",
        spec_event(data=orjson.dumps({"manifests": [fx.manifest(note="\\u0000")]})),
        parse_spec,
    ),
    (
        "sequence at the margin",
        status_event(extensions={"sequenceid": str(NOW_NS + 300 * 10**9)}),
        parse_status,
    ),
    ("sequence zero", status_event(extensions={"sequenceid": "0"}), parse_status),
    (
        "extensions at the limit",
        spec_event(extensions={f"x{i}": "v" for i in range(validation.MAX_EXTENSIONS - 6)}),
        parse_spec,
    ),
]


@pytest.mark.parametrize(("event", "parse"), [a[1:] for a in ACCEPTED], ids=[a[0] for a in ACCEPTED])
def test_values_within_the_limits_pass(event: events.CloudEvent, parse: Any) -> None:
    assert len(event.extensions) <= validation.MAX_EXTENSIONS
    parse(event)


def test_metadata_exactly_at_its_limit_passes_and_one_byte_more_does_not() -> None:
    empty = len(orjson.dumps({"name": "work1", "annotations": {"a": ""}}))
    fits = spec_event(extensions=metadata(annotations={"a": "x" * (validation.MAX_METADATA_BYTES - empty)}))
    assert len(str(fits.extensions["metadata"]).encode()) == validation.MAX_METADATA_BYTES
    bundle_events.parse_spec_request(fits)
    over = spec_event(
        extensions=metadata(annotations={"a": "x" * (validation.MAX_METADATA_BYTES - empty + 1)})
    )
    with pytest.raises(errors.TooLarge):
        bundle_events.parse_spec_request(over)


RESYNCS = [
    (
        "agent resync clustername NUL",
        lambda: bundle_events.parse_spec_resync_request(
            dataclasses.replace(
                bundle_events.spec_resync_request_event("cluster1", {}, source="agent"),
                extensions={"clustername": f"c{NUL}"},
            )
        ),
        "clustername",
    ),
    (
        "agent resync clustername not a name",
        lambda: bundle_events.parse_spec_resync_request(
            bundle_events.spec_resync_request_event("Bad Name", {}, source="agent")
        ),
        "clustername",
    ),
    (
        "agent resync version past int64",
        lambda: bundle_events.parse_spec_resync_request(
            bundle_events.spec_resync_request_event("cluster1", {fx.RID: 1 << 63}, source="agent")
        ),
        "data.resourceVersions[0].resourceVersion",
    ),
    (
        "source resync source NUL",
        lambda: bundle_events.parse_status_resync_request(
            bundle_events.status_resync_request_event({}, source=f"hub{NUL}")
        ),
        "source",
    ),
]


@pytest.mark.parametrize(("parse", "field"), [r[1:] for r in RESYNCS], ids=[r[0] for r in RESYNCS])
def test_resync_requests_are_checked_too(parse: Any, field: str) -> None:
    with pytest.raises(errors.InvalidArgument) as caught:
        parse()
    assert caught.value.field == field


FILTERS = [
    ("consumer NUL", queries.ResourceFilter(consumer=f"c{NUL}"), "consumer"),
    ("consumer over", queries.ResourceFilter(consumer="c" * 254), "consumer"),
    ("source NUL", queries.ResourceFilter(source=f"s{NUL}"), "source"),
    ("source over", queries.ResourceFilter(source="s" * (ATTR + 1)), "source"),
    ("label value NUL", queries.ResourceFilter(labels={"app": NUL}), "label_selector['app']"),
    ("label key NUL", queries.ResourceFilter(labels={NUL: "v"}), "label_selector key '\\x00'"),
]


@pytest.mark.parametrize(("where", "field"), [f[1:] for f in FILTERS], ids=[f[0] for f in FILTERS])
def test_list_and_watch_filters_are_checked(where: queries.ResourceFilter, field: str) -> None:
    with pytest.raises(errors.InvalidArgument) as caught:
        queries.check_resource_filter(where)
    assert caught.value.field == field


def test_a_consumer_filter_and_a_good_filter() -> None:
    with pytest.raises(errors.InvalidArgument):
        queries.check_consumer_filter(queries.ConsumerFilter(labels={"a": NUL}))
    good = queries.ResourceFilter(consumer="cluster1", source="hub", labels={"app": "web"})
    assert queries.check_resource_filter(good) is good


TOKENS = [
    ("empty", "", 0),
    ("zero", "0", 0),
    ("largest", str((1 << 63) - 1), (1 << 63) - 1),
    ("past int64", str(1 << 63), None),
    ("superscript digit", "\u00b2", None),
    ("arabic-indic digit", "\u0661", None),
    ("negative", "-1", None),
    ("long", "1" * 400, None),
]


@pytest.mark.parametrize(("token", "want"), [t[1:] for t in TOKENS], ids=[t[0] for t in TOKENS])
def test_resume_tokens_are_bigints_in_ascii(token: str, want: int | None) -> None:
    if want is not None:
        assert queries.parse_resume_token(token) == want
        return
    with pytest.raises(errors.InvalidArgument) as caught:
        queries.parse_resume_token(token)
    assert len(str(caught.value)) < 300


PAGES = [
    ("default", 0, queries.MAX_PAGE_SIZE, queries.DEFAULT_PAGE_SIZE),
    ("negative", -5, queries.MAX_PAGE_SIZE, queries.DEFAULT_PAGE_SIZE),
    ("asked", 20, queries.MAX_PAGE_SIZE, 20),
    ("over the cap", 10**9, queries.MAX_PAGE_SIZE, queries.MAX_PAGE_SIZE),
    ("over a lower cap", 300, 100, 100),
    ("default over a lower cap", 0, 100, 100),
    ("a cap above the most", 10**9, 10**9, queries.MAX_PAGE_SIZE),
]


@pytest.mark.parametrize(("asked", "cap", "want"), [p[1:] for p in PAGES], ids=[p[0] for p in PAGES])
def test_page_sizes_are_capped(asked: int, cap: int, want: int) -> None:
    assert queries.page_size(asked, cap) == want


@pytest.mark.parametrize("name", ["cluster1\n", "cluster1\x00", "a" * 254])
def test_consumer_names_are_whole_dns_names(name: str) -> None:
    with pytest.raises(errors.InvalidArgument):
        consumers.validate_name(name)


def test_lookup_names_refuse_what_storage_cannot_compare() -> None:
    assert consumers.check_lookup_name("Odd But Harmless") == "Odd But Harmless"
    for bad in ("a\x00", "a" * 254):
        with pytest.raises(errors.InvalidArgument):
            consumers.check_lookup_name(bad)


def test_a_nul_deep_in_a_document_is_found_without_recursion() -> None:
    raw = b"[" * 900 + b'"\\u0000"' + b"]" * 900
    with pytest.raises(errors.InvalidArgument) as caught:
        validation.check_no_nul(orjson.loads(raw), raw, "data")
    assert caught.value.field == "data" + "[0]" * 900


def test_a_good_status_report_parses_unchanged() -> None:
    report = bundle_events.parse_status_report(status_event(), now_ns=NOW_NS)
    assert report.status.sequence_id == NOW_NS and report.resource_id == fx.RID
    assert uuid.UUID(str(report.resource_id)) == fx.RID


BUDGETS = [
    ("server's default", 0, 0, queries.DEFAULT_PAGE_BYTES),
    ("server's own", -1, 8 << 20, 8 << 20),
    ("asked below it", 1 << 20, 8 << 20, 1 << 20),
    ("asked above it", 64 << 20, 8 << 20, 8 << 20),
    ("asked without one", 5 << 20, 0, 5 << 20),
]


@pytest.mark.parametrize(("asked", "cap", "want"), [b[1:] for b in BUDGETS], ids=[b[0] for b in BUDGETS])
def test_page_byte_budgets_are_capped_by_the_servers(asked: int, cap: int, want: int) -> None:
    assert queries.page_bytes(asked, cap) == want
