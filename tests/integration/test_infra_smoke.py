"""Each part of the local runtime is the real thing.

Cases: a SQL round trip on PostgreSQL; a produce/consume round trip on Kafka; a CRD and a custom
object created and watched on a kube-apiserver with the kubernetes client; a client certificate the
cluster does not trust is refused; the controller manager garbage-collects owned objects.
"""

from __future__ import annotations

import threading
import time
import uuid

import psycopg
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from localinfra import kube, kubectl
from maestro.transport.connection import KafkaSettings

pytestmark = pytest.mark.integration


def test_postgres_sql_round_trip(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO t VALUES (1, 'fleet')")
        assert conn.execute("SELECT name FROM t WHERE id = 1").fetchone() == ("fleet",)
        assert conn.execute("SHOW server_version").fetchone()[0].split(".")[0] >= "15"  # type: ignore[index]


def test_kafka_produce_consume_round_trip(kafka_settings: KafkaSettings) -> None:
    topic = f"smoke-{uuid.uuid4().hex[:8]}"
    config = kafka_settings.client_config()
    admin = AdminClient(config)
    for fut in admin.create_topics([NewTopic(topic, 3, 1)]).values():
        fut.result(30)
    producer = Producer({**config, "enable.idempotence": True})
    for i in range(30):
        producer.produce(topic, key=f"cluster-{i % 3}", value=f"event-{i}".encode())
    assert producer.flush(30) == 0
    consumer = Consumer({**config, "group.id": topic, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    seen: set[bytes] = set()
    deadline = time.monotonic() + 30
    while len(seen) < 30 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            seen.add(msg.value())
    consumer.close()
    assert seen == {f"event-{i}".encode() for i in range(30)}


def _api(cluster: kube.Cluster) -> client.ApiClient:
    return config.new_client_from_config(str(cluster.kubeconfig))


WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.smoke.fleetplane.io"},
    "spec": {
        "group": "smoke.fleetplane.io",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}
                        },
                    }
                },
            }
        ],
    },
}


def test_crd_and_custom_object_create_and_watch(hub: kube.Cluster) -> None:
    api = _api(hub)
    ext = client.ApiextensionsV1Api(api)
    ext.create_custom_resource_definition(WIDGET_CRD)
    custom = client.CustomObjectsApi(api)
    deadline = time.monotonic() + 30
    while True:
        try:
            custom.list_namespaced_custom_object("smoke.fleetplane.io", "v1", "default", "widgets")
            break
        except ApiException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    events: list[tuple[str, str]] = []
    started = threading.Event()

    def watch_widgets() -> None:
        w = watch.Watch()
        started.set()
        for ev in w.stream(
            custom.list_namespaced_custom_object,
            "smoke.fleetplane.io",
            "v1",
            "default",
            "widgets",
            timeout_seconds=20,
        ):
            events.append((ev["type"], ev["object"]["metadata"]["name"]))
            if ev["type"] == "DELETED":
                w.stop()

    watcher = threading.Thread(target=watch_widgets)
    watcher.start()
    started.wait()
    time.sleep(0.5)
    body = {
        "apiVersion": "smoke.fleetplane.io/v1",
        "kind": "Widget",
        "metadata": {"name": "w1"},
        "spec": {"size": 3},
    }
    custom.create_namespaced_custom_object("smoke.fleetplane.io", "v1", "default", "widgets", body)
    got = custom.get_namespaced_custom_object("smoke.fleetplane.io", "v1", "default", "widgets", "w1")
    assert got["spec"] == {"size": 3}
    custom.delete_namespaced_custom_object("smoke.fleetplane.io", "v1", "default", "widgets", "w1")
    watcher.join(30)
    assert ("ADDED", "w1") in events and ("DELETED", "w1") in events


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_api_server_refuses_unauthenticated_clients(hub: kube.Cluster) -> None:
    cfg = client.Configuration()
    cfg.host = hub.server
    cfg.verify_ssl = False
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(client.ApiClient(cfg)).list_namespace()
    assert err.value.status in (401, 403)


def test_controller_manager_collects_owned_objects(hub: kube.Cluster) -> None:
    core = client.CoreV1Api(_api(hub))
    owner = core.create_namespaced_config_map("default", {"metadata": {"name": "owner"}})
    core.create_namespaced_config_map(
        "default",
        {
            "metadata": {
                "name": "owned",
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
                ],
            }
        },
    )
    core.delete_namespaced_config_map("owner", "default")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        names = {cm.metadata.name for cm in core.list_namespaced_config_map("default").items}
        if "owned" not in names:
            return
        time.sleep(0.5)
    pytest.fail("the garbage collector did not delete the ConfigMap owned by a deleted owner")


def test_a_service_account_kubeconfig_acts_as_that_account(
    hub: kube.Cluster, tmp_path_factory: pytest.TempPathFactory
) -> None:
    reader = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "smoke-configmap-reader"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
    }
    kubectl.apply(hub.kubeconfig, [reader])
    path = kube.service_account_kubeconfig(
        hub, "default", "smoke-operator", tmp_path_factory.mktemp("sa") / "kubeconfig",
        cluster_role="smoke-configmap-reader",
    )  # fmt: skip

    api = config.new_client_from_config(str(path))
    review = client.AuthenticationV1Api(api).create_self_subject_review(
        client.V1SelfSubjectReview(api_version="authentication.k8s.io/v1", kind="SelfSubjectReview")
    )
    assert review.status.user_info.username == "system:serviceaccount:default:smoke-operator"
    core = client.CoreV1Api(api)
    core.list_namespaced_config_map("default")  # its role may read
    with pytest.raises(ApiException) as err:  # but not write
        core.create_namespaced_config_map(
            "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="not-allowed"))
        )
    assert err.value.status == 403
