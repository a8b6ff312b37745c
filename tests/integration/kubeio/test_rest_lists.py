"""``KubeRest.list_all`` against a real kube-apiserver: every page of a collection, and the
metadata-only form the hub controllers use for their mirrors (names and annotations, no data)."""

from __future__ import annotations

import uuid

import pytest

from kubeio.rest import METADATA_LIST, KubeRest
from localinfra import kube

pytestmark = pytest.mark.integration


async def test_a_metadata_list_pages_through_every_object_without_its_data(hub: kube.Cluster) -> None:
    rest = KubeRest.from_kubeconfig(hub.kubeconfig)
    namespace = f"lists-{uuid.uuid4().hex[:6]}"
    try:
        await rest.request("POST", "/api/v1/namespaces", body={"metadata": {"name": namespace}})
        path = f"/api/v1/namespaces/{namespace}/configmaps"
        for i in range(7):
            body = {
                "metadata": {"name": f"cm-{i}", "annotations": {"example.com/n": str(i)}},
                "data": {"payload": "x" * 1000},
            }
            await rest.request("POST", path, body=body)

        full, version = await rest.list_all(path, page=3)
        slim, _ = await rest.list_all(path, page=3, accept=METADATA_LIST)

        assert version
        assert sorted(i["metadata"]["name"] for i in full) == [f"cm-{i}" for i in range(7)]
        assert all(i["data"]["payload"] == "x" * 1000 for i in full)
        assert [i["metadata"]["name"] for i in slim] == [i["metadata"]["name"] for i in full]
        assert [i["metadata"]["annotations"] for i in slim] == [i["metadata"]["annotations"] for i in full]
        assert all("data" not in i for i in slim)
        assert {i["kind"] for i in slim} == {"PartialObjectMetadata"}
    finally:
        await rest.request("DELETE", f"/api/v1/namespaces/{namespace}")
        await rest.close()
