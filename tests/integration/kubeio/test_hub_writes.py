"""``controllers.hub.HubClient``'s writes against a real kube-apiserver with Argo CD's CRDs: a mirror
applied and its status replaced are stored whole, while each reply carries only the metadata (the
controllers never read more of it, and the hub would spend CPU encoding the rest); a mirror with a
field the CRD does not declare is refused at once, naming the field (server-side apply answers it
with a 500, which is not the server being away; a POST or PUT with a 400); a mirror created by
POST and replaced by PUT loses what the replacement leaves out, and a PUT at a version older than
the stored one is a conflict, not a lost write."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from controllers.hub import ClusterError, ConflictError, HubClient
from localinfra import kube

pytestmark = pytest.mark.integration


def _mirror(name: str, **source: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": "default", "annotations": {"example.com/n": "1"}},
        "spec": {
            "project": "default",
            "source": {"repoURL": "https://example.com/repo.git", "path": "app", **source},
            "destination": {"name": "cluster-1", "namespace": "app"},
        },
        "status": {"sync": {"status": "Unknown"}},
    }


async def test_a_mirror_is_stored_whole_and_each_write_answers_with_its_metadata(hub: kube.Cluster) -> None:
    client = HubClient(hub.kubeconfig)
    name = f"mirror-{uuid.uuid4().hex[:6]}"
    mirror = _mirror(name)
    try:
        applied = await client.apply_application(mirror, field_manager="test")
        await client.replace_application_status(
            "default", name, {"sync": {"status": "Synced"}, "health": {"status": "Healthy"}}
        )
        stored = await client.get_application("default", name)

        assert applied["kind"] == "PartialObjectMetadata"
        assert applied["metadata"]["name"] == name
        assert "spec" not in applied and "status" not in applied
        assert stored is not None
        assert stored["metadata"]["annotations"]["example.com/n"] == "1"
        assert stored["spec"] == mirror["spec"]
        assert stored["status"] == {"sync": {"status": "Synced"}, "health": {"status": "Healthy"}}
    finally:
        await client.delete_application("default", name)
        await client.close()


async def test_a_mirror_with_a_field_the_crd_does_not_declare_is_refused_at_once(hub: kube.Cluster) -> None:
    client = HubClient(hub.kubeconfig)
    name = f"mirror-{uuid.uuid4().hex[:6]}"
    try:
        started = time.monotonic()
        with pytest.raises(ClusterError, match=r"\.spec\.source\.unknownField: field not declared in schema"):
            await client.apply_application(_mirror(name, unknownField="x"), field_manager="test")
        assert time.monotonic() - started < 10, "refused at once, not retried as if the hub were away"
        assert await client.get_application("default", name) is None
    finally:
        await client.close()


async def test_a_mirror_created_by_post_and_replaced_by_put_loses_what_the_replacement_leaves_out(
    hub: kube.Cluster,
) -> None:
    client = HubClient(hub.kubeconfig)
    name = f"mirror-{uuid.uuid4().hex[:6]}"
    mirror = _mirror(name, targetRevision="v1")
    mirror["metadata"]["labels"] = {"team": "blue", "app": "a"}
    try:
        created = await client.create_application(mirror, field_manager="test")
        stale = created["metadata"]["resourceVersion"]
        await client.replace_application_status("default", name, {"sync": {"status": "Synced"}})
        stored = await client.get_application("default", name)
        assert stored is not None and stored["metadata"]["resourceVersion"] != stale

        changed = _mirror(name)  # no targetRevision, no labels, the annotation kept
        with pytest.raises(ConflictError):
            await client.replace_application(
                {**changed, "metadata": {**changed["metadata"], "resourceVersion": stale}},
                field_manager="test",
            )
        replaced = {
            **changed,
            "metadata": {**changed["metadata"], "resourceVersion": stored["metadata"]["resourceVersion"]},
            "status": stored["status"],
        }
        reply = await client.replace_application(replaced, field_manager="test")
        after = await client.get_application("default", name)

        assert created["kind"] == reply["kind"] == "PartialObjectMetadata"
        assert after is not None
        assert "targetRevision" not in after["spec"]["source"], "a field the replacement left out is gone"
        assert not after["metadata"].get("labels"), "so are labels"
        assert after["metadata"]["annotations"]["example.com/n"] == "1"
        assert after["status"] == {"sync": {"status": "Synced"}}
    finally:
        await client.delete_application("default", name)
        await client.close()


async def test_a_whole_mirror_with_a_field_the_crd_does_not_declare_is_refused_naming_it(
    hub: kube.Cluster,
) -> None:
    client = HubClient(hub.kubeconfig)
    name = f"mirror-{uuid.uuid4().hex[:6]}"
    try:
        with pytest.raises(ClusterError, match=r"unknown field \"spec\.source\.unknownField\"") as refused:
            await client.create_application(_mirror(name, unknownField="x"), field_manager="test")
        assert refused.value.status == 400
        assert await client.get_application("default", name) is None
    finally:
        await client.close()
