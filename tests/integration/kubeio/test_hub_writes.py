"""``controllers.hub.HubClient``'s writes against a real kube-apiserver with Argo CD's CRDs: a mirror
applied and its status replaced are stored whole, while each reply carries only the metadata (the
controllers never read more of it, and the hub would spend CPU encoding the rest); a mirror with a
field the CRD does not declare is refused at once, naming the field (server-side apply answers it
with a 500, which is not the server being away)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from controllers.hub import ClusterError, HubClient
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
