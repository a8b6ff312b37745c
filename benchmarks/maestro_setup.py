"""The Maestro a benchmark runs against, and how a benchmark's run ends.

Every hop is secured as in production (TLS, a certificate per process, per-call authorization,
Kafka ACLs) unless ``insecure`` (``--insecure``), which runs plaintext with no authorization, to
measure what security costs. The servers are processes of the run's environment
(``localinfra.platform``), on a database and a topic prefix of their own.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.simulated import FLEET
from localinfra import kafka, platform, postgres, process
from localinfra.environment import Environment
from maestro.client import Credentials
from maestro.transport import acls, layout
from maestro.transport.admin import Topics
from maestro.transport.connection import KafkaSettings, tls_dir_files
from trust import files
from trust.identity import Identity

Report = Callable[[str], None]
#: what the benchmarks' own clients (load, observers) are: they register clusters and read everything
BENCH_IDENTITY = Identity.admin("bench")


@dataclass(frozen=True)
class Security:
    """How a benchmark's processes reach the server: certificates from ``env``'s CA, as deployed
    (the default), or plaintext with ``insecure`` (to measure what TLS and authorization cost)."""

    env: Environment
    insecure: bool = False

    def tls(self, who: Identity, *, server: bool = False) -> files.TLSFiles | None:
        """``who``'s identity, issued once and kept while valid (issuing again would replace files a
        process started a moment ago may still be reading); None when insecure."""
        return None if self.insecure else platform.identity(self.env, who, server=server)

    def client_args(self, who: Identity) -> list[str]:
        return platform.access_args(self.tls(who))

    def kafka(self, broker: kafka.Kafka, who: Identity, *, server: bool = False) -> KafkaSettings:
        """How ``who`` reaches the broker: with its certificate, or plaintext when insecure."""
        tls = self.tls(who, server=server)
        if tls is None:
            return KafkaSettings.insecure(broker.bootstrap)
        return KafkaSettings.secure(broker.bootstrap, tls_dir_files(tls.ca.parent))

    def credentials(self, who: Identity = BENCH_IDENTITY) -> Credentials:
        tls = self.tls(who)
        return Credentials.insecure() if tls is None else Credentials.from_folder(tls.ca.parent)


def start_stores(
    env: Environment, report: Report, *, insecure: bool, durable: bool = True, kafka_heap: str = "768m"
) -> tuple[postgres.Postgres, kafka.Kafka, Security]:
    """A run's PostgreSQL and Kafka (saying so), and how its processes reach them."""
    mode = "plaintext, no authorization" if insecure else "TLS, client certificates, ACLs"
    report(f"[bench] starting PostgreSQL and Kafka ({mode}) ...")
    pg = postgres.start(env, durable=durable)
    kf = kafka.start(env, heap=kafka_heap, secure=not insecure)
    return pg, kf, Security(env, insecure=insecure)


async def fleet_kafka(security: Security, broker: kafka.Kafka, names: layout.Layout) -> KafkaSettings:
    """The simulated agents' identity, granted its prefixed ACLs under ``names`` by the server's."""
    fleet = security.kafka(broker, FLEET)
    if not security.insecure:
        server = security.kafka(broker, platform.SERVER_IDENTITY, server=True)
        admin = Topics(server, names=names)
        await asyncio.to_thread(admin.grant_sync, acls.fleet_acls(FLEET.kafka_principal, names))
    return fleet


async def start_server(
    env: Environment,
    pg: postgres.Postgres,
    kf: kafka.Kafka,
    root: Path,
    security: Security,
    *,
    extra: Sequence[str] = (),
) -> tuple[process.ProcessRecord, str, layout.Layout]:
    """A Maestro server process of the environment, on its own database and topic prefix, serving
    (``extra``: more of its options)."""
    servers, names = await start_servers(env, pg, kf, root, 1, security, extra=extra)
    return servers[0][0], servers[0][1], names


async def start_servers(
    env: Environment,
    pg: postgres.Postgres,
    kf: kafka.Kafka,
    root: Path,
    replicas: int,
    security: Security,
    *,
    extra: Sequence[str] = (),
) -> tuple[list[tuple[process.ProcessRecord, str]], layout.Layout]:
    """``replicas`` Maestro server processes sharing one new database and topic prefix, serving."""
    dsn = await asyncio.to_thread(pg.create_database, "maestro")
    names = layout.Layout(f"bench.{uuid.uuid4().hex[:8]}")
    tls = security.tls(platform.SERVER_IDENTITY, server=True)
    servers = []
    for replica in range(replicas):
        name = "maestro-server" if replicas == 1 else f"maestro-server-{replica}"
        servers.append(
            platform.launch_server(
                env,
                name,
                root / f"{name}.log",
                dsn=dsn,
                kafka=kf.bootstrap,
                tls=tls,
                server_id=f"bench-{replica}",
                log_level="warning",
                extra=["--topic-prefix", names.prefix, *extra],
            )
        )
    for server in servers:
        await asyncio.to_thread(server.wait)
    return [(server.record, server.address) for server in servers], names


def end_run(env: Environment, root: Path, *, keep_logs: bool, report: Report) -> None:
    """Stop every process a benchmark started; remove its folder, or — when something went wrong —
    keep it and say where the logs are."""
    env.down(remove_files=not keep_logs)
    if keep_logs:
        report(f"[bench] logs kept in {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
