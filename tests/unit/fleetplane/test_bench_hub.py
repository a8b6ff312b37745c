"""The hub benchmark writes the controllers' own mirrors, and a ConfigMap baseline of the same bytes."""

from __future__ import annotations

import orjson

from controllers import contract
from fleetplane import bench_hub


def test_mirrors_are_the_propagation_controllers_own_with_a_synced_status() -> None:
    mirrors = bench_hub.render_mirrors(3, revision="v2")

    assert [m["metadata"]["name"] for m in mirrors] == [f"cluster-0000{i}-guestbook-000" for i in range(3)]
    first = mirrors[0]
    assert first["kind"] == "Application"
    assert first["metadata"]["annotations"][contract.ANNOTATION_MIRROR_HASH]
    assert first["metadata"]["ownerReferences"][0]["kind"] == "ApplicationSet"
    assert first["spec"]["source"]["targetRevision"] == "v2"
    assert first["spec"]["destination"]["name"] == "cluster-00000"
    assert (first["status"]["sync"]["status"], first["status"]["health"]["status"]) == ("Synced", "Healthy")
    # a new revision is a different status, so the re-apply writes something
    assert bench_hub.render_mirrors(1)[0]["status"] != first["status"]


def test_the_configmap_baseline_holds_the_same_bytes() -> None:
    mirror = bench_hub.render_mirrors(1)[0]
    configmap = bench_hub.configmap_of(mirror)

    assert configmap["metadata"]["name"] == mirror["metadata"]["name"]
    assert orjson.loads(configmap["data"]["application.json"]) == mirror
    assert bench_hub.renamed(mirror, "post")["metadata"]["name"] == f"{mirror['metadata']['name']}-post"
    assert mirror["metadata"]["name"] == "cluster-00000-guestbook-000"  # renamed copies, not edits
