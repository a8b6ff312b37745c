"""Upstream Maestro's REST API on a real server (PostgreSQL, Kafka, TLS): upstream's shapes, paging
and errors, the same authorization as the gRPC API, and searches that cannot inject SQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from localinfra import kube, ports
from maestro.api import bundles
from maestro.client_errors import PermissionDenied
from maestro.server import app
from maestro.transport.connection import KafkaSettings
from tests.integration.maestro.conftest import ADMIN, Identities, MaestroUnderTest, server_settings
from tests.integration.maestro.rest_client import Rest, rest_client
from tests.integration.maestro.test_authz import service_account_token
from trust.identity import Identity

pytestmark = pytest.mark.integration
CONSUMERS = "/api/maestro/v1/consumers"
BUNDLES = "/api/maestro/v1/resource-bundles"


@pytest.fixture
async def admin_rest(rest_server: MaestroUnderTest) -> AsyncIterator[Rest]:
    assert rest_server.running.rest_port is not None
    async with rest_client(rest_server.running.rest_port, rest_server.identities.issue(ADMIN)) as rest:
        yield rest


def _configmap(name: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}}


async def _works(
    server: MaestroUnderTest, consumer: str, source: str, count: int, labels: dict[str, str]
) -> None:
    async with server.client(source=source) as client:
        for n in range(count):
            metadata = {"name": f"{source}-{n}", "labels": labels}
            await client.apply(
                consumer, uuid.uuid4(), bundles.ManifestBundle([_configmap(f"cm-{n}")]), metadata=metadata
            )


async def test_consumers_create_get_list_patch_delete_in_upstreams_shapes(admin_rest: Rest) -> None:
    made = await admin_rest.call("POST", CONSUMERS, json={"name": "c1", "labels": {"env": "dev"}})
    assert made.status == 201
    assert made.body["kind"] == "Consumer" and made.body["id"] == "c1" and made.body["name"] == "c1"
    assert made.body["href"] == f"{CONSUMERS}/c1" and made.body["labels"] == {"env": "dev"}
    await admin_rest.call("POST", CONSUMERS, json={"name": "c2"})

    got = await admin_rest.call("GET", f"{CONSUMERS}/c1")
    assert got.status == 200 and got.body == made.body
    listed = await admin_rest.call("GET", CONSUMERS, params={"size": "1", "page": "2"})
    assert listed.status == 200
    assert {k: listed.body[k] for k in ("kind", "page", "size", "total")} == {
        "kind": "ConsumerList",
        "page": 2,
        "size": 1,
        "total": 2,
    }
    assert [c["name"] for c in listed.body["items"]] == ["c2"]
    found = await admin_rest.call("GET", CONSUMERS, params={"search": "name in ('c1', 'c9')"})
    assert [c["name"] for c in found.body["items"]] == ["c1"]

    patched = await admin_rest.call("PATCH", f"{CONSUMERS}/c1", json={"labels": {"env": "prod"}})
    assert patched.status == 200 and patched.body["labels"] == {"env": "prod"}

    assert (await admin_rest.call("DELETE", f"{CONSUMERS}/c2")).status == 204
    gone = await admin_rest.call("GET", f"{CONSUMERS}/c2")
    assert gone.status == 404
    assert {k: gone.body[k] for k in ("kind", "id", "href", "code")} == {
        "kind": "Error",
        "id": "7",
        "href": "/api/maestro/v1/errors/7",
        "code": "maestro-7",
    }
    assert "c2" in gone.body["reason"] and gone.body["operation_id"]


async def test_bad_requests_name_the_field(admin_rest: Rest) -> None:
    missing = await admin_rest.call("POST", CONSUMERS, json={"labels": {}})
    assert missing.status == 400 and "name" in missing.body["reason"]
    not_json = await admin_rest.call("POST", CONSUMERS, data=b"{", headers={"X-Operation-ID": "op-7"})
    assert not_json.status == 400 and "JSON" in not_json.body["reason"]
    assert not_json.body["operation_id"] == "op-7"
    bad_page = await admin_rest.call("GET", BUNDLES, params={"page": "0"})
    assert bad_page.status == 400 and "page" in bad_page.body["reason"]
    ordered = await admin_rest.call("GET", BUNDLES, params={"orderBy": "name asc"})
    assert ordered.status == 400 and "orderBy" in ordered.body["reason"]
    assert (await admin_rest.call("GET", "/api/maestro/v1/nothing")).status == 404
    put = await admin_rest.call("PUT", CONSUMERS)
    assert put.status == 405 and put.body["code"] == "maestro-10"


async def test_bundles_list_pages_search_get_and_delete(
    rest_server: MaestroUnderTest, admin_rest: Rest
) -> None:
    await admin_rest.call("POST", CONSUMERS, json={"name": "c1"})
    await admin_rest.call("POST", CONSUMERS, json={"name": "c2"})
    await _works(rest_server, "c1", "hub", 5, {"app": "web", "env": "dev"})
    await _works(rest_server, "c2", "hub", 2, {"app": "db"})

    first = await admin_rest.call("GET", BUNDLES, params={"size": "3"})
    assert (first.body["kind"], first.body["page"], first.body["size"], first.body["total"]) == (
        "ResourceBundleList",
        1,
        3,
        7,
    )
    pages = [first.body["items"]]
    for page in (2, 3):
        pages.append(
            (await admin_rest.call("GET", BUNDLES, params={"size": "3", "page": str(page)})).body["items"]
        )
    assert [len(p) for p in pages] == [3, 3, 1]
    assert len({b["id"] for p in pages for b in p}) == 7

    labelled = await admin_rest.call(
        "GET",
        BUNDLES,
        params={
            "search": "source='hub' and consumer_name='c1'"
            " and payload->'metadata'->'labels'@>'{\"app\":\"web\"}'"
            " and payload->'metadata'->'labels'->>'env' in ('dev')"
        },
    )
    assert labelled.body["total"] == 5
    item = labelled.body["items"][0]
    assert item["kind"] == "ResourceBundle" and item["consumer_name"] == "c1" and item["version"] == 1
    assert item["manifests"][0]["kind"] == "ConfigMap" and item["metadata"]["labels"]["app"] == "web"

    got = await admin_rest.call("GET", f"{BUNDLES}/{item['id']}")
    assert got.status == 200 and got.body["id"] == item["id"]
    assert (await admin_rest.call("DELETE", f"{BUNDLES}/{item['id']}")).status == 204
    deleting = await admin_rest.call("GET", f"{BUNDLES}/{item['id']}")
    assert deleting.body.get("deleted_at")
    assert (await admin_rest.call("GET", f"{BUNDLES}/{uuid.uuid4()}")).status == 404


async def test_authorization_is_the_grpc_apis(rest_server: MaestroUnderTest, admin_rest: Rest) -> None:
    await admin_rest.call("POST", CONSUMERS, json={"name": "c1"})
    await _works(rest_server, "c1", "hub", 2, {})
    await _works(rest_server, "c1", "other", 3, {})
    port = rest_server.running.rest_port
    assert port is not None
    async with rest_client(port, rest_server.identities.issue(Identity.source("hub"))) as hub:
        mine = await hub.call("GET", BUNDLES)
        assert mine.body["total"] == 2 and {b["name"] for b in mine.body["items"]} == {"hub-0", "hub-1"}
        also_mine = await hub.call("GET", BUNDLES, params={"search": "source='hub' and name='hub-1'"})
        assert [b["name"] for b in also_mine.body["items"]] == ["hub-1"]
        theirs = await hub.call("GET", BUNDLES, params={"search": "source='other'"})
        assert theirs.status == 403 and "source 'other'" in theirs.body["reason"]
        refused = await hub.call("POST", CONSUMERS, json={"name": "c9"})
        assert refused.status == 403 and refused.body["code"] == "maestro-4"
        assert "source/hub" in refused.body["reason"]
        other_id = (await admin_rest.call("GET", BUNDLES, params={"search": "source='other'"})).body["items"][
            0
        ]["id"]
        assert (await hub.call("GET", f"{BUNDLES}/{other_id}")).status == 403
        assert (await hub.call("DELETE", f"{BUNDLES}/{other_id}")).status == 403
    async with rest_client(port, rest_server.identities.issue(ADMIN), with_certificate=False) as nobody:
        anonymous = await nobody.call("GET", CONSUMERS)
        assert anonymous.status == 401 and anonymous.body["code"] == "maestro-15"
        assert "no credentials" in anonymous.body["reason"]


async def test_consumers_are_the_admins_on_both_apis(rest_server: MaestroUnderTest, admin_rest: Rest) -> None:
    """Who may create, label and delete consumers is the same over REST and gRPC: the admin alone;
    a source or a cluster is refused on both and nothing changes."""
    await admin_rest.call("POST", CONSUMERS, json={"name": "kept", "labels": {"env": "dev"}})
    port = rest_server.running.rest_port
    assert port is not None
    for who in (Identity.source("hub"), Identity.cluster("kept", 1)):
        async with rest_client(port, rest_server.identities.issue(who)) as rest:
            for method, path, body in (
                ("POST", CONSUMERS, {"name": "made"}),
                ("PATCH", f"{CONSUMERS}/kept", {"labels": {"env": "prod"}}),
                ("DELETE", f"{CONSUMERS}/kept", None),
            ):
                refused = await rest.call(method, path, json=body)
                assert (refused.status, refused.body["code"]) == (403, "maestro-4"), (who, method)
        async with rest_server.client(who) as grpc_client:
            with pytest.raises(PermissionDenied):
                await grpc_client.create_consumer("made")
            with pytest.raises(PermissionDenied):
                await grpc_client.update_consumer_labels("kept", {"env": "prod"})
            with pytest.raises(PermissionDenied):
                await grpc_client.delete_consumer("kept")
    listed = await admin_rest.call("GET", CONSUMERS)
    assert [(c["name"], c["labels"]) for c in listed.body["items"]] == [("kept", {"env": "dev"})]
    async with rest_server.client(ADMIN) as admin:
        await admin.create_consumer("made")
    assert (await admin_rest.call("DELETE", f"{CONSUMERS}/made")).status == 204


async def _table_state(server: MaestroUnderTest) -> tuple[int, str, int]:
    """How many bundles and consumers there are, and a checksum of every bundle row."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(server.settings.dsn) as conn:
        cur = await conn.execute(
            "SELECT count(*), md5(coalesce(string_agg(r::text, '|' ORDER BY id), '')),"
            " (SELECT count(*) FROM consumers) FROM resources r"
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0]), str(row[1]), int(row[2])


@pytest.mark.parametrize(
    "attack",
    [
        "name = 'x'; DELETE FROM resources; --",
        "name = 'x' or 1=1",
        "name = 'x'' or ''1''=''1'",
        "source = 'hub' union select * from consumers",
        "payload->'metadata'->'labels'@>'{}'); DROP TABLE resources; --",
        "id = 'x'::text; TRUNCATE resources",
    ],
)
async def test_an_injection_attempt_is_refused_and_changes_nothing(
    rest_server: MaestroUnderTest, admin_rest: Rest, attack: str
) -> None:
    await admin_rest.call("POST", CONSUMERS, json={"name": "c1"})
    await _works(rest_server, "c1", "hub", 3, {"app": "web"})
    before = await _table_state(rest_server)
    answer = await admin_rest.call("GET", BUNDLES, params={"search": attack})
    if answer.status == 200:
        # parsed as a plain comparison (a quoted string stays a value): it matched nothing
        assert answer.body["total"] == 0, answer.body
    else:
        assert answer.status == 400 and answer.body["code"] == "maestro-23", answer.body
        assert "search" in answer.body["reason"]
    assert await _table_state(rest_server) == before
    assert before[0] == 3


async def test_a_page_of_large_bundles_is_whole(rest_server: MaestroUnderTest, admin_rest: Rest) -> None:
    """A page larger than the byte budget comes whole, written as it is read."""
    assert rest_server.settings.max_page_bytes < 20 * 200_000
    await admin_rest.call("POST", CONSUMERS, json={"name": "c1"})
    big = {**_configmap("big"), "data": {"blob": "x" * 200_000}}
    async with rest_server.client(source="hub") as client:
        for n in range(20):
            await client.apply(
                "c1", uuid.uuid4(), bundles.ManifestBundle([big]), metadata={"name": f"big-{n}"}
            )
    listed = await admin_rest.call("GET", BUNDLES, params={"size": "400"})
    assert (listed.body["size"], listed.body["total"], len(listed.body["items"])) == (20, 20, 20)
    assert all(len(b["manifests"][0]["data"]["blob"]) == 200_000 for b in listed.body["items"])


async def test_a_hub_token_is_authorized_by_the_hubs_rbac(
    pg_dsn: str, kafka_settings: KafkaSettings, identities: Identities, hub: kube.Cluster
) -> None:
    settings = server_settings(
        pg_dsn,
        kafka_settings,
        identities,
        rest_port=0,
        token_port=ports.free_port(),
        hub_kubeconfig=hub.kubeconfig,
        auth_cache_seconds=1.0,
    )
    running = await app.start(settings)
    try:
        server = MaestroUnderTest(running, settings, identities)
        async with server.client(source="team-rest") as admin:
            await admin.create_consumer("c1")
            await admin.apply("c1", uuid.uuid4(), bundles.ManifestBundle([_configmap("a")]))
        async with server.client(source="elsewhere") as admin:
            await admin.apply("c1", uuid.uuid4(), bundles.ManifestBundle([_configmap("b")]))
        rules = [
            {
                "apiGroups": ["maestro.fleetplane.io"],
                "resources": ["sources"],
                "resourceNames": ["team-rest"],
                "verbs": ["list"],
            }
        ]
        token = await asyncio.to_thread(service_account_token, hub, "team-rest", rules)
        assert running.rest_port is not None
        bearer = {"Authorization": f"Bearer {token}"}
        async with rest_client(running.rest_port, identities.issue(ADMIN), with_certificate=False) as rest:
            mine = await rest.call("GET", BUNDLES, params={"search": "source='team-rest'"}, headers=bearer)
            assert mine.status == 200 and mine.body["total"] == 1
            every = await rest.call("GET", BUNDLES, headers=bearer)
            assert every.status == 403 and every.body["code"] == "maestro-4"
            assert (await rest.call("GET", CONSUMERS, headers=bearer)).status == 403
            forged = await rest.call("GET", CONSUMERS, headers={"Authorization": "Bearer not-a-token"})
            assert forged.status == 401 and forged.body["code"] == "maestro-15"
    finally:
        await running.stop()
