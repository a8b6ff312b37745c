"""The hub benchmark writes the controllers' own mirrors, and a ConfigMap baseline of the same bytes."""

from __future__ import annotations

import orjson

from benchmarks import hub as hub_bench
from controllers import contract


def test_mirrors_are_the_propagation_controllers_own_with_a_synced_status() -> None:
    mirrors = hub_bench.render_mirrors(3, revision="v2")

    assert [m["metadata"]["name"] for m in mirrors] == [f"cluster-0000{i}-guestbook-000" for i in range(3)]
    first = mirrors[0]
    assert first["kind"] == "Application"
    assert first["metadata"]["annotations"][contract.ANNOTATION_MIRROR_HASH]
    assert first["metadata"]["ownerReferences"][0]["kind"] == "ApplicationSet"
    assert first["spec"]["source"]["targetRevision"] == "v2"
    assert first["spec"]["destination"]["name"] == "cluster-00000"
    assert (first["status"]["sync"]["status"], first["status"]["health"]["status"]) == ("Synced", "Healthy")
    # a new revision is a different status, so the re-apply writes something
    assert hub_bench.render_mirrors(1)[0]["status"] != first["status"]


def test_the_configmap_baseline_holds_the_same_bytes() -> None:
    mirror = hub_bench.render_mirrors(1)[0]
    configmap = hub_bench.configmap_of(mirror)

    assert configmap["metadata"]["name"] == mirror["metadata"]["name"]
    assert orjson.loads(configmap["data"]["application.json"]) == mirror
    assert mirror["metadata"]["name"] == "cluster-00000-guestbook-000"
