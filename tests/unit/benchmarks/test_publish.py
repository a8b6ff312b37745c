"""The publish benchmark sends what upstream's source work client sends."""

from __future__ import annotations

import json

from benchmarks.publish import work_event
from maestro.api import bundle_events, events, ids
from maestro.wire import cloudevents as wire_events


def test_a_work_event_is_an_upstream_create_of_the_clusters_manifestwork() -> None:
    pb = work_event("upstream-perf", "cluster-1", 7, "x" * 1024)

    event = wire_events.from_pb(pb)
    request = bundle_events.parse_spec_request(event, max_bytes=1024 * 1024)

    assert pb.type == "io.open-cluster-management.works.v1alpha1.manifestbundles.spec.create_request"
    assert pb.attributes["ce-clustername"].ce_string == "cluster-1"
    assert pb.attributes["ce-resourceversion"].ce_integer == 0
    assert request.resource_id == ids.work_resource_id("upstream-perf", "cluster-1", "perf-work-7")
    assert request.consumer == "cluster-1"
    assert request.metadata["namespace"] == "cluster-1"
    data = json.loads(pb.binary_data)
    assert data["manifests"][0]["data"]["payload"] == "x" * 1024
    assert event.type == str(events.EventType(events.SubResource.SPEC, events.Action.CREATE_REQUEST))
