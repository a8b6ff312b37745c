"""`KubeApplier` against a real kube-apiserver (a worker cluster of the session's environment).

Cases: server-side apply (and Update) creates then updates a ConfigMap and a Deployment, marks
them, records them in an AppliedBundle with their uids, and feedback reads `.spec.replicas` (no
kubelet, so no Deployment status); CreateOnly does not overwrite a changed object; ReadOnly never
writes; an update that drops a manifest deletes exactly that object; Orphan delete keeps the
objects (unmarked); Foreground delete removes them and the record; a fresh `KubeApplier` (a
restart) loads the records and deletes what they list; objects someone else created (before us,
or re-created after us under the same name) survive the delete; an unknown kind fails only its
manifest; a CRD and its custom resource in one bundle apply once the CRD is served (discovery
refreshes on a miss). Each test uses its own namespace and consumer name.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from kubeio.rest import RetrySettings
from localinfra import kube
from maestro.agent import bundle_status, records
from maestro.agent.applier import ApplyResult
from maestro.agent.bundle_applier import ApplierSettings
from maestro.agent.kube import KubeApplier
from maestro.agent.manifests import MARKER_LABEL

pytestmark = pytest.mark.integration

FIELD_MANAGER = "fleetplane-maestro-agent"


@pytest.fixture(scope="module")
def cluster(worker_clusters: list[kube.Cluster]) -> kube.Cluster:
    return worker_clusters[0]


@pytest.fixture(scope="module")
def api(cluster: kube.Cluster) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(str(cluster.kubeconfig))
    yield api_client
    api_client.close()


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    name = f"agent-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


@pytest.fixture
async def applier(cluster: kube.Cluster, api: client.ApiClient) -> AsyncIterator[KubeApplier]:
    consumer = f"it-{uuid.uuid4().hex[:8]}"
    agent = make_applier(cluster, consumer)
    await agent.start()
    yield agent
    await agent.close()
    custom = client.CustomObjectsApi(api)
    listing = cast(
        dict[str, Any],
        custom.list_cluster_custom_object(
            records.GROUP,
            records.VERSION,
            records.PLURAL,
            label_selector=f"{records.CONSUMER_LABEL}={consumer}",
        ),
    )
    for item in listing["items"]:
        custom.delete_cluster_custom_object(
            records.GROUP, records.VERSION, records.PLURAL, item["metadata"]["name"]
        )


def make_applier(cluster: kube.Cluster, consumer: str) -> KubeApplier:
    return KubeApplier(
        consumer,
        cluster.kubeconfig,
        settings=ApplierSettings(delete_wait=30.0),
        retry=RetrySettings(budget=30.0),
    )


def rid() -> str:
    return str(uuid.uuid4())


def cm(ns: str, name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": data,
    }


def deployment(ns: str, name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    }


def config_for(
    ns: str, resource: str, name: str, strategy: str | None = None, *, group: str = "", **extra: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceIdentifier": {"group": group, "resource": resource, "namespace": ns, "name": name},
        **extra,
    }
    if strategy:
        out["updateStrategy"] = {"type": strategy}
    return out


def get_cm(api: client.ApiClient, ns: str, name: str) -> dict[str, Any] | None:
    """The ConfigMap as plain JSON (camelCase keys, like the agent sees it), or None."""
    try:
        model = client.CoreV1Api(api).read_namespaced_config_map(name, ns)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    obj: dict[str, Any] = api.sanitize_for_serialization(model)
    return obj


def create_cm(api: client.ApiClient, ns: str, name: str, data: dict[str, str] | None = None) -> None:
    """A ConfigMap created by "someone else" (not the agent)."""
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data=data)
    client.CoreV1Api(api).create_namespaced_config_map(ns, body)


def labels(obj: dict[str, Any] | None) -> dict[str, str]:
    assert obj is not None
    return dict(obj["metadata"].get("labels") or {})


def get_record(api: client.ApiClient, resource_id: str) -> dict[str, Any] | None:
    try:
        obj = client.CustomObjectsApi(api).get_cluster_custom_object(
            records.GROUP, records.VERSION, records.PLURAL, records.record_name(resource_id)
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return cast(dict[str, Any], obj)


def assert_ok(result: ApplyResult) -> None:
    failures = [o.error for o in result.outcomes if not o.applied]
    assert result.ok, (failures, result.errors)


@pytest.mark.parametrize("strategy", ["ServerSideApply", "Update"])
async def test_apply_creates_then_updates(
    applier: KubeApplier, api: client.ApiClient, namespace: str, strategy: str
) -> None:
    resource_id = rid()
    configs = [
        config_for(namespace, "configmaps", "settings", strategy),
        config_for(
            namespace,
            "deployments",
            "web",
            strategy,
            group="apps",
            feedbackRules=[
                {"type": "WellKnownStatus"},
                {"type": "JSONPaths", "jsonPaths": [{"name": "desired", "path": ".spec.replicas"}]},
            ],
        ),
    ]
    v1 = {
        "manifests": [cm(namespace, "settings", {"color": "blue"}), deployment(namespace, "web", 1)],
        "manifestConfigs": configs,
    }
    result = await applier.apply(resource_id, 1, v1)
    assert_ok(result)
    created = get_cm(api, namespace, "settings")
    assert created is not None and created["data"] == {"color": "blue"}
    assert labels(created)[MARKER_LABEL] == resource_id
    managers = {(f["manager"], f["operation"]) for f in created["metadata"]["managedFields"]}
    assert (FIELD_MANAGER, "Apply" if strategy == "ServerSideApply" else "Update") in managers

    stored = get_record(api, resource_id)
    assert stored is not None and stored["spec"]["version"] == 1
    assert stored["spec"]["consumer"] == applier.consumer
    applied = {(r["resource"], r["name"]): r["uid"] for r in stored["status"]["appliedResources"]}
    assert applied[("configmaps", "settings")] == created["metadata"]["uid"]
    assert set(applied) == {("configmaps", "settings"), ("deployments", "web")}

    report = bundle_status.apply_status(result)
    assert report["resourceStatus"][1]["statusFeedback"] == {
        "values": [{"name": "desired", "fieldValue": {"type": "Integer", "integer": 1}}]
    }

    v2 = {
        "manifests": [cm(namespace, "settings", {"color": "green"}), deployment(namespace, "web", 3)],
        "manifestConfigs": configs,
    }
    result = await applier.apply(resource_id, 2, v2)
    assert_ok(result)
    updated = get_cm(api, namespace, "settings")
    assert updated is not None and updated["data"] == {"color": "green"}
    assert updated["metadata"]["uid"] == created["metadata"]["uid"]
    web = client.AppsV1Api(api).read_namespaced_deployment("web", namespace)
    assert web.spec.replicas == 3
    live = await applier.observe(resource_id)
    assert result.record is not None
    report = bundle_status.build_status(
        2, bundle_status.refreshed(result.outcomes, result.record.manifests, live), configs
    )
    assert report["resourceStatus"][1]["statusFeedback"]["values"][0]["fieldValue"]["integer"] == 3
    assert get_record(api, resource_id)["spec"]["version"] == 2  # type: ignore[index]


async def test_create_only_does_not_overwrite(
    applier: KubeApplier, api: client.ApiClient, namespace: str
) -> None:
    resource_id = rid()
    configs = [config_for(namespace, "configmaps", "once", "CreateOnly")]
    assert_ok(
        await applier.apply(
            resource_id, 1, {"manifests": [cm(namespace, "once", {"v": "1"})], "manifestConfigs": configs}
        )
    )
    client.CoreV1Api(api).patch_namespaced_config_map("once", namespace, {"data": {"v": "changed"}})
    result = await applier.apply(
        resource_id, 2, {"manifests": [cm(namespace, "once", {"v": "2"})], "manifestConfigs": configs}
    )
    assert_ok(result)
    once = get_cm(api, namespace, "once")
    assert once is not None and once["data"] == {"v": "changed"}
    assert result.outcomes[0].owned


async def test_read_only_never_writes(applier: KubeApplier, api: client.ApiClient, namespace: str) -> None:
    create_cm(api, namespace, "theirs", {"v": "theirs"})
    before = get_cm(api, namespace, "theirs")
    resource_id = rid()
    bundle = {
        "manifests": [cm(namespace, "theirs", {"v": "ours"}), cm(namespace, "absent", {"v": "ours"})],
        "manifestConfigs": [
            config_for(
                namespace,
                "configmaps",
                "theirs",
                "ReadOnly",
                feedbackRules=[{"type": "JSONPaths", "jsonPaths": [{"name": "v", "path": ".data.v"}]}],
            ),
            config_for(namespace, "configmaps", "absent", "ReadOnly"),
        ],
    }
    result = await applier.apply(resource_id, 1, bundle)
    assert_ok(result)
    after = get_cm(api, namespace, "theirs")
    assert after is not None and before is not None
    assert (
        after["data"] == {"v": "theirs"}
        and after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    )
    assert get_cm(api, namespace, "absent") is None
    assert result.record is not None and result.record.applied_resources == ()
    report = bundle_status.apply_status(result)
    assert report["resourceStatus"][0]["statusFeedback"]["values"][0]["fieldValue"]["string"] == "theirs"
    assert report["conditions"][1]["reason"] == "ResourcesNotAvailable"
    assert (await applier.delete(resource_id)).done
    assert get_cm(api, namespace, "theirs") is not None


async def test_update_dropping_a_manifest_deletes_exactly_it(
    applier: KubeApplier, api: client.ApiClient, namespace: str
) -> None:
    create_cm(api, namespace, "bystander")
    resource_id = rid()
    both = [cm(namespace, "keep", {"a": "1"}), cm(namespace, "drop", {"b": "1"})]
    assert_ok(await applier.apply(resource_id, 1, {"manifests": both}))
    result = await applier.apply(resource_id, 2, {"manifests": [both[0]]})
    assert_ok(result)
    assert [r.name for r in result.pruned] == ["drop"]
    await wait_for(lambda: get_cm(api, namespace, "drop") is None, "the dropped ConfigMap to be deleted")
    assert get_cm(api, namespace, "keep") is not None
    assert get_cm(api, namespace, "bystander") is not None
    stored = get_record(api, resource_id)
    assert stored is not None and [r["name"] for r in stored["status"]["appliedResources"]] == ["keep"]


async def test_orphan_delete_keeps_objects(
    applier: KubeApplier, api: client.ApiClient, namespace: str
) -> None:
    resource_id = rid()
    bundle = {
        "manifests": [cm(namespace, "left", {"a": "1"}), deployment(namespace, "web", 1)],
        "deleteOption": {"propagationPolicy": "Orphan"},
    }
    assert_ok(await applier.apply(resource_id, 1, bundle))
    # The delete event carries no payload: the option comes from the record.
    result = await applier.delete(resource_id)
    assert result.done and {r.name for r in result.orphaned} == {"left", "web"} and result.deleted == ()
    left = get_cm(api, namespace, "left")
    assert MARKER_LABEL not in labels(left)
    assert client.AppsV1Api(api).read_namespaced_deployment("web", namespace) is not None
    assert get_record(api, resource_id) is None


async def test_foreground_delete_removes_objects(
    applier: KubeApplier, api: client.ApiClient, namespace: str
) -> None:
    resource_id = rid()
    bundle = {
        "manifests": [cm(namespace, "gone", {"a": "1"}), deployment(namespace, "web", 2)],
        "deleteOption": {"propagationPolicy": "Foreground"},
    }
    assert_ok(await applier.apply(resource_id, 1, bundle))
    result = await applier.delete(resource_id)
    assert result.done, result
    assert {r.name for r in result.deleted} == {"gone", "web"}
    assert get_cm(api, namespace, "gone") is None
    with pytest.raises(ApiException) as missing:
        client.AppsV1Api(api).read_namespaced_deployment("web", namespace)
    assert missing.value.status == 404
    assert get_record(api, resource_id) is None
    assert bundle_status.deleted_status(result)["conditions"][-1]["reason"] == "ManifestsDeleted"


async def test_restart_loads_records_and_knows_what_it_owns(
    applier: KubeApplier, cluster: kube.Cluster, api: client.ApiClient, namespace: str
) -> None:
    resource_id = rid()
    assert_ok(
        await applier.apply(resource_id, 3, {"manifests": [cm(namespace, "a", {}), cm(namespace, "b", {})]})
    )

    # A restart: a new applier that knows nothing but the cluster.
    restarted = make_applier(cluster, applier.consumer)
    try:
        loaded = await restarted.load_records()
        assert list(loaded) == [resource_id]
        record = loaded[resource_id]
        assert record.version == 3
        uids = {r.name: r.uid for r in record.applied_resources}
        assert uids == {name: (get_cm(api, namespace, name) or {})["metadata"]["uid"] for name in ("a", "b")}
        assert await make_applier(cluster, "someone-else").load_records() == {}
        rebuilt = bundle_status.build_status(
            record.version, bundle_status.observed_outcomes(record, await restarted.observe(resource_id))
        )
        assert rebuilt["conditions"][0]["reason"] == "AppliedManifestWorkComplete"
        result = await restarted.delete(resource_id)
        assert result.done
        assert get_cm(api, namespace, "a") is None and get_cm(api, namespace, "b") is None
    finally:
        await restarted.close()


async def test_objects_created_by_others_survive_delete(
    applier: KubeApplier, api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    create_cm(api, namespace, "before-us", {"owner": "them"})
    resource_id = rid()
    bundle = {
        "manifests": [
            cm(namespace, "before-us", {"owner": "them", "extra": "ours"}),
            cm(namespace, "replaced", {"v": "1"}),
            cm(namespace, "ours", {"v": "1"}),
        ]
    }
    result = await applier.apply(resource_id, 1, bundle)
    assert_ok(result)
    assert [o.owned for o in result.outcomes] == [False, True, True]
    before_us = get_cm(api, namespace, "before-us")
    assert MARKER_LABEL not in labels(before_us)
    # Someone deletes "replaced" and creates their own under the same name.
    core.delete_namespaced_config_map("replaced", namespace)
    await wait_for(lambda: get_cm(api, namespace, "replaced") is None, "our ConfigMap to go")
    create_cm(api, namespace, "replaced", {"v": "theirs"})

    deleted = await applier.delete(resource_id)
    assert deleted.done
    assert get_cm(api, namespace, "ours") is None
    assert get_cm(api, namespace, "before-us") is not None
    replaced = get_cm(api, namespace, "replaced")
    assert replaced is not None and replaced["data"] == {"v": "theirs"}


async def test_unknown_kind_fails_only_its_manifest(
    applier: KubeApplier, api: client.ApiClient, namespace: str
) -> None:
    widget = {
        "apiVersion": "nope.fleetplane.io/v1",
        "kind": "Widget",
        "metadata": {"name": "w", "namespace": namespace},
    }
    result = await applier.apply(rid(), 1, {"manifests": [cm(namespace, "fine", {}), widget]})
    assert [o.applied for o in result.outcomes] == [True, False]
    assert (
        result.outcomes[1].error
        == f"Widget {namespace}/w: the cluster does not serve apiVersion nope.fleetplane.io/v1"
    )
    assert get_cm(api, namespace, "fine") is not None


async def test_crd_and_its_resource_in_one_bundle(
    applier: KubeApplier, api: client.ApiClient, namespace: str
) -> None:
    group = f"g{uuid.uuid4().hex[:6]}.fleetplane.io"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"gadgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }
    gadget = {
        "apiVersion": f"{group}/v1",
        "kind": "Gadget",
        "metadata": {"name": "g1", "namespace": namespace},
        "spec": {"size": 2},
    }
    resource_id = rid()
    deadline = time.monotonic() + 30
    # The CR may be applied before the new CRD is served; the next attempt finds it (discovery
    # refreshes on a miss), as the agent's retry of a failed bundle would.
    while True:
        result = await applier.apply(resource_id, 1, {"manifests": [gadget, crd]})
        if result.ok or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.5)
    try:
        assert_ok(result)
        got = cast(
            dict[str, Any],
            client.CustomObjectsApi(api).get_namespaced_custom_object(
                group, "v1", namespace, "gadgets", "g1"
            ),
        )
        assert got["spec"] == {"size": 2}
    finally:
        # Not through the agent: a Foreground delete of a custom resource waits until the garbage
        # collector has noticed its new type (its periodic resync, ~30s) -- correct, but slow here.
        client.ApiextensionsV1Api(api).delete_custom_resource_definition(f"gadgets.{group}")


async def wait_for(check: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)
