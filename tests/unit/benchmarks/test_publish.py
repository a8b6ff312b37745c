"""The publish benchmark sends what upstream's source work client sends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import upstream, upstream_authorizer
from benchmarks.publish import LevelResult, PublishResult, PublishSettings, cached_or_given, work_event
from localinfra import upstream_maestro
from maestro.api import bundle_events, events, ids
from maestro.wire import cloudevents as wire_events
from trust.files import TLSFiles
from trust.identity import Identity


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


def test_the_ratio_is_fleetplanes_rate_over_upstreams_at_each_concurrency_both_ran() -> None:
    result = PublishResult(16, insecure=False)
    result.levels = [
        LevelResult("fleetplane", 1, 100, creates_per_s=600.0),
        LevelResult("fleetplane", 10, 100, creates_per_s=900.0),
        LevelResult("upstream", 1, 100, creates_per_s=200.0),
    ]
    assert result.ratios() == {1: 3.0}
    assert result.as_dict()["ratios"] == {1: 3.0}


def test_upstreams_builds_are_taken_from_the_cache_unless_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEETPLANE_CACHE", str(tmp_path))
    assert cached_or_given(PublishSettings()).driver is None
    assert cached_or_given(PublishSettings()).upstream_servers == ()
    for built in (upstream_maestro.binary(), upstream_maestro.server_binary()):
        built.parent.mkdir(parents=True, exist_ok=True)
        built.write_text("")
    cached = cached_or_given(PublishSettings())
    assert (cached.driver, cached.upstream_servers) == (
        upstream_maestro.binary(),
        (upstream_maestro.server_binary(),),
    )
    given = cached_or_given(PublishSettings(upstream_servers=(tmp_path / "maestro",), driver=tmp_path / "d"))
    assert (given.driver, given.upstream_servers) == (tmp_path / "d", (tmp_path / "maestro",))


def test_upstream_runs_secure_with_mutual_tls_its_authorizer_and_https(tmp_path: Path) -> None:
    serving = TLSFiles(ca=tmp_path / "ca.crt", cert=tmp_path / "tls.crt", key=tmp_path / "tls.key")
    args = upstream.Secure(serving, tmp_path / "reviewer.kubeconfig").args()
    assert "--grpc-authn-type=mtls" in args
    assert f"--grpc-client-ca-file={tmp_path / 'ca.crt'}" in args
    assert f"--grpc-authorizer-config={tmp_path / 'reviewer.kubeconfig'}" in args
    assert {
        f"--grpc-tls-cert-file={tmp_path / 'tls.crt'}",
        f"--https-cert-file={tmp_path / 'tls.crt'}",
    } <= set(args)
    assert "--enable-https" in args


def test_upstreams_authorizer_lets_the_source_publish_as_itself_only() -> None:
    rules = {
        role["metadata"]["name"]: role["rules"]
        for role in upstream_authorizer.rbac(Identity.source("upstream-perf"))
        if role["kind"] == "ClusterRole"
    }
    assert rules["maestro-source-upstream-perf"] == [
        {"nonResourceURLs": ["/sources/upstream-perf"], "verbs": ["pub", "sub"]}
    ]
