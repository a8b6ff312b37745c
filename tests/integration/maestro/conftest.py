"""Fixtures for Maestro's storage and server tests.

`pg_dsn` (a fresh database per test) comes from the shared session environment in
tests/conftest.py; `migrated_dsn` is that database with the schema, `store` a `Store` on it.
`maestro_server` is a replica serving TLS with a certificate of the session environment's CA, which
also issues its clients': `source_client` is an admin's (it registers consumers and publishes as
`test-source`), `maestro_server.credentials(identity)` any other's.
"""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import grpc
import pytest

from localinfra import pki, ports
from localinfra.environment import Environment
from maestro.client import Credentials, MaestroClient
from maestro.server import app
from maestro.server.settings import ServerSettings
from maestro.storage import migrations, pool, store
from maestro.transport import layout
from maestro.transport.connection import KafkaSettings
from maestro.wire import channels
from trust import authority
from trust.identity import Identity

_counter = itertools.count()


@pytest.fixture
async def migrated_dsn(pg_dsn: str) -> str:
    await migrations.migrate(pg_dsn)
    return pg_dsn


@pytest.fixture
async def maestro_store(migrated_dsn: str) -> AsyncIterator[store.Store]:
    opened = await pool.open_pool(migrated_dsn, min_size=1, max_size=4)
    try:
        yield store.Store(opened)
    finally:
        await opened.close()


ADMIN = Identity.admin("test-admin")
SERVER = Identity.service("maestro-server")


@dataclasses.dataclass
class Identities:
    """Certificates of one CA, each issued into a folder of its own under ``folder``."""

    ca: authority.CertificateAuthority
    folder: Path

    def issue(
        self, who: Identity, *, lifetime: timedelta = authority.DEFAULT_LIFETIME, server: bool = False
    ) -> Path:
        """A new certificate of ``who`` (a folder as ``--tls-dir`` takes it)."""
        target = self.folder / f"{who.kind}-{who.name}-{uuid.uuid4().hex[:6]}"
        hosts = ("127.0.0.1", "localhost") if server else ()
        self.ca.issue(who, lifetime=lifetime, hosts=hosts, server=server).write(
            target, "tls", self.ca.cert_pem
        )
        return target

    def credentials(
        self, who: Identity = ADMIN, *, lifetime: timedelta = authority.DEFAULT_LIFETIME
    ) -> Credentials:
        return Credentials.from_folder(self.issue(who, lifetime=lifetime))


@pytest.fixture
def identities(infra_env: Environment, tmp_path: Path) -> Identities:
    """The session environment's CA (which the servers under test trust), issuing here."""
    return Identities(pki.platform_ca(infra_env), tmp_path / "identities")


@dataclasses.dataclass
class MaestroUnderTest:
    running: app.Running
    settings: ServerSettings
    identities: Identities

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.running.port}"

    @property
    def token_address(self) -> str:
        assert self.running.token_port is not None, "this server takes no tokens"
        return f"127.0.0.1:{self.running.token_port}"

    def credentials(
        self, who: Identity = ADMIN, *, lifetime: timedelta = authority.DEFAULT_LIFETIME
    ) -> Credentials:
        return self.identities.credentials(who, lifetime=lifetime)

    def channel(
        self, who: Identity = ADMIN, options: list[tuple[str, object]] | None = None
    ) -> grpc.aio.Channel:
        return channels.aio_channel(self.address, self.credentials(who), options or [])

    def client(
        self, who: Identity = ADMIN, *, source: str = "test-source", **kwargs: object
    ) -> MaestroClient:
        return MaestroClient(self.address, source=source, credentials=self.credentials(who), **kwargs)  # type: ignore[arg-type]


def server_settings(
    dsn: str, kafka: KafkaSettings, identities: Identities, **overrides: object
) -> ServerSettings:
    """A replica's settings: a fresh topic prefix (tests never share events), short periods, TLS,
    and its calls counted (every call of the tests passes the metrics' interceptor) on a free port."""
    settings = ServerSettings(
        dsn=dsn,
        kafka=kafka,
        port=ports.free_port(),
        topics=layout.Layout(f"test.{uuid.uuid4().hex[:10]}"),
        deletion_grace=timedelta(seconds=3),
        heartbeat_seconds=1.0,
        server_id="maestro-test",
        tls=channels.tls_files(identities.issue(SERVER, server=True)),
        metrics_port=0,
    )
    return dataclasses.replace(settings, **overrides)  # type: ignore[arg-type]


@pytest.fixture
async def maestro_server(
    pg_dsn: str, kafka_settings: KafkaSettings, identities: Identities
) -> AsyncIterator[MaestroUnderTest]:
    """A server replica on a fresh database, with Kafka topics of its own, serving TLS."""
    settings = server_settings(pg_dsn, kafka_settings, identities)
    running = await app.start(settings)
    try:
        yield MaestroUnderTest(running, settings, identities)
    finally:
        await running.stop()


@pytest.fixture
async def rest_server(
    pg_dsn: str, kafka_settings: KafkaSettings, identities: Identities
) -> AsyncIterator[MaestroUnderTest]:
    """``maestro_server`` also serving upstream Maestro's REST API on a port of its own."""
    settings = server_settings(pg_dsn, kafka_settings, identities, rest_port=0)
    running = await app.start(settings)
    try:
        yield MaestroUnderTest(running, settings, identities)
    finally:
        await running.stop()


@pytest.fixture
async def source_client(maestro_server: MaestroUnderTest) -> AsyncIterator[MaestroClient]:
    """An admin's client publishing as ``test-source`` (the tests also register consumers with it)."""
    async with maestro_server.client() as client:
        yield client
