"""A mirror's resource tree as argocd-server reads it from Redis."""

from __future__ import annotations

from controllers.status import tree

CONFIGMAP = {
    "version": "v1",
    "kind": "ConfigMap",
    "namespace": "default",
    "name": "configmap1",
    "status": "Synced",
    "health": {"status": "Healthy"},
}


def test_the_key_is_argo_cds_for_the_instance_name_with_its_cache_version_and_compression() -> None:
    assert tree.instance_name("argocd", "a1", "argocd") == "a1"
    assert tree.instance_name("team-a", "a1", "argocd") == "team-a_a1"
    assert tree.tree_key("a1") == f"app|resources-tree|a1|{tree.CACHE_VERSION}.gz"
    assert tree.updates_channel("a1") == f"app|managed-resources|a1|{tree.CACHE_VERSION}"


def test_each_reported_resource_is_a_root_node_with_its_health_and_cluster() -> None:
    built = tree.application_tree([CONFIGMAP], "c1")
    (node,) = built["nodes"]
    assert {k: node[k] for k in ("version", "kind", "namespace", "name")} == {
        "version": "v1",
        "kind": "ConfigMap",
        "namespace": "default",
        "name": "configmap1",
    }
    assert "group" not in node  # the core group is empty, and Argo CD omits empty fields
    assert node["health"] == {"status": "Healthy"}
    assert node["info"] == [{"name": "Cluster", "value": "c1"}]
    assert "parentRefs" not in node


def test_uids_are_stable_and_differ_between_clusters() -> None:
    first = tree.application_tree([CONFIGMAP], "c1")["nodes"][0]["uid"]
    assert first == tree.application_tree([CONFIGMAP], "c1")["nodes"][0]["uid"]
    assert first != tree.application_tree([CONFIGMAP], "c2")["nodes"][0]["uid"]


def test_encoding_is_gzipped_json_and_deterministic() -> None:
    built = tree.application_tree([CONFIGMAP], "c1")
    data = tree.encode(built)
    assert data[:2] == b"\x1f\x8b"
    assert data == tree.encode(built)
    assert tree.decode(data) == built
