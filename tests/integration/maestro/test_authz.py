"""The gRPC API refuses whoever may not act, and nothing stored changes (real server, PostgreSQL, hub).

Source ``source-b`` has a work on cluster ``cluster-b``. Each intruder tries to publish a new work
as source-b, delete B's work, subscribe to source-b's statuses, list every work, delete cluster-b
(admin API) and revoke a certificate (admin API): a caller with no credentials (on the certificate
port the handshake fails; on the token port the call is UNAUTHENTICATED), an agent's certificate of
cluster-a (PERMISSION_DENIED), a certificate that expired while its connection stayed open
(UNAUTHENTICATED; a new connection fails the handshake), a revoked certificate (UNAUTHENTICATED),
a certificate of another CA (handshake), a ServiceAccount token of the hub whose RBAC does not allow
it (PERMISSION_DENIED). Every table's rows are the same before and after. A token whose RBAC allows
`publish`, `subscribe` and `list` on sources/source-b publishes, reads B's works, and nothing else;
an agent's certificate dies with its cluster's registration.
"""

from __future__ import annotations

import asyncio
import datetime
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from cryptography import x509

from localinfra import kube, kubectl, ports
from maestro import client_errors
from maestro.api import bundle_events, bundles, events, queries
from maestro.client import Credentials, MaestroClient
from maestro.server import app
from maestro.transport.connection import KafkaSettings
from maestro.wire import channels, stubs
from maestro.wire import cloudevents as wire_events
from tests.integration.maestro.conftest import Identities, MaestroUnderTest, server_settings
from trust import authority, files
from trust.identity import Identity

pytestmark = pytest.mark.integration

SOURCE_B = "source-b"
Attempt = Callable[[grpc.aio.Channel], Coroutine[Any, Any, object]]
TABLES = ("consumers", "resources", "outbox", "revoked_certificates", "resource_tombstones")


@pytest.fixture
async def guarded(
    pg_dsn: str, kafka_settings: KafkaSettings, identities: Identities, hub: kube.Cluster
) -> AsyncIterator[MaestroUnderTest]:
    """A server that takes certificates and, on its token port, the hub's tokens."""
    settings = server_settings(
        pg_dsn,
        kafka_settings,
        identities,
        token_port=ports.free_port(),
        hub_kubeconfig=hub.kubeconfig,
        auth_cache_seconds=1.0,
    )
    running = await app.start(settings)
    try:
        yield MaestroUnderTest(running, settings, identities)
    finally:
        await running.stop()


def _bundle() -> bundles.ManifestBundle:
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "default"}}
    return bundles.ManifestBundle(manifests=[configmap])


def _event(
    action: bundles.SpecAction, work: uuid.UUID, source: str = SOURCE_B
) -> stubs.cloudevent.CloudEvent:
    spec = _bundle() if action is not bundles.SpecAction.DELETE else None
    request = bundles.SpecRequest(action, work, "cluster-b", source, 0, spec)
    return wire_events.to_pb(bundle_events.spec_request_event(request))


def attempts(b_work: uuid.UUID) -> dict[str, Attempt]:
    async def publish(ch: grpc.aio.Channel) -> object:
        event = _event(bundles.SpecAction.CREATE, uuid.uuid4())
        return await stubs.cloudevent_grpc.CloudEventServiceStub(ch).Publish(
            stubs.cloudevent.PublishRequest(event=event), timeout=10
        )

    async def delete(ch: grpc.aio.Channel) -> object:
        event = _event(bundles.SpecAction.DELETE, b_work)
        return await stubs.cloudevent_grpc.CloudEventServiceStub(ch).Publish(
            stubs.cloudevent.PublishRequest(event=event), timeout=10
        )

    async def subscribe(ch: grpc.aio.Channel) -> object:
        stream = stubs.cloudevent_grpc.CloudEventServiceStub(ch).Subscribe(
            stubs.cloudevent.SubscriptionRequest(source=SOURCE_B, data_type=events.MANIFEST_BUNDLES),
            timeout=10,
        )
        return await anext(aiter(stream))

    async def list_all(ch: grpc.aio.Channel) -> object:
        return await stubs.query_grpc.MaestroQueryStub(ch).ListResourceBundles(
            stubs.query.ListResourceBundlesRequest(), timeout=10
        )

    async def delete_consumer(ch: grpc.aio.Channel) -> object:
        return await stubs.query_grpc.MaestroQueryStub(ch).DeleteConsumer(
            stubs.query.DeleteConsumerRequest(name="cluster-b"), timeout=10
        )

    async def revoke(ch: grpc.aio.Channel) -> object:
        return await stubs.query_grpc.MaestroQueryStub(ch).RevokeCertificate(
            stubs.query.RevokeCertificateRequest(serial="0x1234"), timeout=10
        )

    return {
        "publish as B": publish,
        "delete B's work": delete,
        "subscribe to B": subscribe,
        "list every work": list_all,
        "delete B's cluster": delete_consumer,
        "revoke a certificate": revoke,
    }


async def snapshot(dsn: str) -> dict[str, tuple[int, str]]:
    """Each table's row count and a checksum of its rows, once the outbox relay has published what
    was waiting (the server's own work: it deletes outbox rows and moves the consumers' relay
    leases, which are left out)."""
    rows = {table: f"SELECT * FROM {table}" for table in TABLES}
    rows["consumers"] = (
        "SELECT name, labels, placement_slot, spec_topic, spec_partition, created_at FROM consumers"
    )
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        for _ in range(150):
            if not (await (await conn.execute("SELECT count(*) FROM outbox")).fetchone() or (0,))[0]:
                break
            await asyncio.sleep(0.2)
        else:
            pytest.fail("the outbox relay did not publish what was waiting within 30s")
        out = {}
        for table, select in rows.items():
            cur = await conn.execute(
                "SELECT count(*), coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '')"  # type: ignore[arg-type]
                f" FROM ({select}) t"
            )
            row = await cur.fetchone()
            assert row is not None
            out[table] = (int(row[0]), str(row[1]))
    return out


async def all_refused(channel: grpc.aio.Channel, b_work: uuid.UUID, code: grpc.StatusCode, who: str) -> None:
    for what, attempt in attempts(b_work).items():
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await attempt(channel)
        assert refused.value.code() == code, (
            f"{who}: {what}: {refused.value.code()} {refused.value.details()}"
        )
        if code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
            assert refused.value.details(), f"{who}: {what}: a refusal says what is needed"


def _raw_channel(
    address: str, ca: bytes, key: bytes | None = None, cert: bytes | None = None
) -> grpc.aio.Channel:
    return grpc.aio.secure_channel(address, grpc.ssl_channel_credentials(ca, key, cert))


def _serial(folder: Path) -> int:
    return x509.load_pem_x509_certificate((folder / "tls.crt").read_bytes()).serial_number


def service_account_token(hub: kube.Cluster, name: str, rules: list[dict[str, Any]]) -> str:
    """A token of a new ServiceAccount of the hub whose ClusterRole has ``rules``."""
    namespace = "default"
    role = f"maestro-authz-{name}"
    kubectl.apply(
        hub.kubeconfig,
        [
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": namespace},
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": role},
                "rules": rules,
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": role},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
            },
        ],
    )
    return kubectl.run(hub.kubeconfig, "create", "token", name, "-n", namespace, "--duration", "1h").strip()


async def test_intruders_are_refused_and_nothing_stored_changes(
    guarded: MaestroUnderTest, identities: Identities, hub: kube.Cluster, tmp_path: Path
) -> None:
    server = guarded
    ca_pem = identities.ca.cert_pem
    async with server.client(source=SOURCE_B) as admin:
        cluster_a = await admin.create_consumer("cluster-a")
        await admin.create_consumer("cluster-b")
        b_work = uuid.uuid4()
        await admin.apply("cluster-b", b_work, _bundle(), metadata={"name": "b"})
        revoked_folder = identities.issue(Identity.admin("leaver"))
        await admin.revoke_certificate(_serial(revoked_folder), "left the team")
    assert cluster_a.slot is not None
    short_folder = identities.issue(Identity.admin("short"), lifetime=datetime.timedelta(seconds=3))
    short = Credentials.from_folder(short_folder)
    async with channels.aio_channel(server.address, short) as expiring:
        # open while still valid: an HTTP/2 connection outlives the certificate
        await stubs.query_grpc.MaestroQueryStub(expiring).ListConsumers(stubs.query.ListConsumersRequest())
        token_no_publish = await asyncio.to_thread(
            service_account_token,
            hub,
            "no-publish",
            [{"apiGroups": ["maestro.fleetplane.io"], "resources": ["sources"], "verbs": ["get"]}],
        )
        token_file = tmp_path / "no-publish.token"
        token_file.write_text(token_no_publish)
        before = await snapshot(server.settings.dsn)
        await asyncio.sleep(3.5)

        await all_refused(expiring, b_work, grpc.StatusCode.UNAUTHENTICATED, "an expired certificate")
        async with channels.aio_channel(server.address, short) as fresh:
            await all_refused(
                fresh, b_work, grpc.StatusCode.UNAVAILABLE, "an expired certificate, new connection"
            )
    async with _raw_channel(server.address, ca_pem) as anonymous:
        await all_refused(anonymous, b_work, grpc.StatusCode.UNAVAILABLE, "no certificate")
    async with _raw_channel(server.token_address, ca_pem) as anonymous:
        await all_refused(anonymous, b_work, grpc.StatusCode.UNAUTHENTICATED, "no token")
    async with server.channel(Identity.cluster("cluster-a", cluster_a.slot)) as agent:
        await all_refused(agent, b_work, grpc.StatusCode.PERMISSION_DENIED, "cluster-a's agent")
    async with channels.aio_channel(server.address, Credentials.from_folder(revoked_folder)) as revoked:
        await all_refused(revoked, b_work, grpc.StatusCode.UNAUTHENTICATED, "a revoked certificate")
    stranger_ca = authority.CertificateAuthority.create()
    stranger = stranger_ca.issue(Identity.admin("test-admin"))
    async with _raw_channel(server.address, ca_pem, stranger.key_pem, stranger.cert_pem) as foreign:
        await all_refused(foreign, b_work, grpc.StatusCode.UNAVAILABLE, "another CA's certificate")
    ca_only = Credentials(tls=files.TLSFiles(ca=short_folder / "ca.crt"), token_file=token_file)
    async with channels.aio_channel(server.token_address, ca_only) as no_rights:
        await all_refused(no_rights, b_work, grpc.StatusCode.PERMISSION_DENIED, "a token without publish")

    assert await snapshot(server.settings.dsn) == before


async def test_a_token_allowed_on_a_source_publishes_and_reads_that_source_alone(
    guarded: MaestroUnderTest, hub: kube.Cluster, tmp_path: Path
) -> None:
    server = guarded
    async with server.client(source="source-c") as admin:
        await admin.create_consumer("cluster-b")
        c_work = uuid.uuid4()
        await admin.apply("cluster-b", c_work, _bundle())
    rules = [
        {
            "apiGroups": ["maestro.fleetplane.io"],
            "resources": ["sources"],
            "resourceNames": [SOURCE_B],
            "verbs": ["publish", "subscribe", "list"],
        }
    ]
    token_file = tmp_path / "team-b.token"
    token_file.write_text(await asyncio.to_thread(service_account_token, hub, "team-b", rules))
    ca = server.identities.issue(Identity.admin("unused")) / "ca.crt"
    creds = Credentials(tls=files.TLSFiles(ca=ca), token_file=token_file)
    async with MaestroClient(
        server.token_address, source=SOURCE_B, credentials=creds, batch_publish=True
    ) as team:
        mine = uuid.uuid4()
        await team.apply("cluster-b", mine, _bundle())
        listed, _ = await team.list(queries.ResourceFilter(source=SOURCE_B))
        assert [r.bundle.id for r in listed] == [mine]
        with pytest.raises(client_errors.PermissionDenied):
            await team.list()  # every source's works
        with pytest.raises(client_errors.PermissionDenied) as denied:
            await team.get(c_work)
        assert "sources/source-c" in denied.value.details
        # In one batch, the event of another source is refused alone.
        other = MaestroClient(server.token_address, source="source-c", credentials=creds, batch_publish=True)
        async with other:
            outcomes = await asyncio.gather(
                team.apply("cluster-b", uuid.uuid4(), _bundle()),
                other.delete("cluster-b", c_work),
                return_exceptions=True,
            )
        assert outcomes[0] is None
        assert isinstance(outcomes[1], client_errors.PermissionDenied)
    async with server.client() as admin:
        assert (await admin.get(c_work)).bundle.deleted_at is None


async def test_an_agents_certificate_dies_with_its_clusters_registration(guarded: MaestroUnderTest) -> None:
    server = guarded
    async with server.client() as admin:
        first = await admin.create_consumer("cluster-r")
        assert first.slot is not None
        old = Identity.cluster("cluster-r", first.slot)
        async with server.client(old) as agent:
            assert (await agent.get_consumer("cluster-r")).slot == first.slot
            with pytest.raises(client_errors.PermissionDenied):
                await agent.get_consumer("cluster-a")
            await admin.delete_consumer("cluster-r")
            again = await admin.create_consumer("cluster-r")
            with pytest.raises(client_errors.PermissionDenied) as denied:
                await agent.get_consumer("cluster-r")
            assert "registered again" in denied.value.details
        assert again.slot is not None
        async with server.client(Identity.cluster("cluster-r", again.slot)) as renewed:
            assert (await renewed.get_consumer("cluster-r")).slot == again.slot
