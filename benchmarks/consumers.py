"""``fleetplane bench consumers``: register and delete many clusters, and count what Kafka keeps.

No real clusters: each consumer is registered (its two topics and its cluster's ACLs made) and
deleted again (ACLs revoked, topics and agent group deleted), ``concurrency`` at a time, against a
Maestro server process on real PostgreSQL and Kafka. The figures: the broker's partition count
before, at the highest seen while the run went, and after; the topics and ACLs left under the
server's prefix (0 when every deletion released what its registration made); the time per
registration and per deletion.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from confluent_kafka.admin import AdminClient

from benchmarks import maestro_setup
from localinfra import kafka, platform, postgres
from localinfra.environment import Environment
from maestro.client import MaestroClient
from maestro.transport import acls, layout
from maestro.transport.client_config import base_config
from maestro.transport.connection import KafkaSettings

Progress = Callable[[str], None]


@dataclass
class ChurnResult:
    consumers: int
    concurrency: int
    partitions_before: int = 0
    partitions_peak: int = 0
    partitions_after: int = 0
    topics_left: int = 0
    acls_left: int = 0
    seconds: float = 0.0
    create_ms_mean: float = 0.0
    delete_ms_mean: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _count(client: AdminClient, names: layout.Layout) -> tuple[int, int, int]:
    """The broker's partitions, and the topics and ACLs under ``names``' prefix."""
    topics = client.list_topics(timeout=60).topics
    partitions = sum(len(meta.partitions) for meta in topics.values())
    prefix = names.prefix + "."
    mine = sum(1 for t in topics if t.startswith(prefix))
    listed = client.describe_acls(acls.every_acl(), request_timeout=60).result(60)
    return partitions, mine, sum(1 for b in listed if b.name.startswith(prefix))


async def run(count: int, concurrency: int, progress: Progress, *, insecure: bool = False) -> ChurnResult:
    result = ChurnResult(count, concurrency)
    root = Path(tempfile.mkdtemp(prefix="fleetplane-bench-"))
    env = Environment(root / "env")
    finished = False
    try:
        progress("[bench] starting PostgreSQL, Kafka and a Maestro server ...")
        pg = postgres.start(env, durable=False)
        kf = kafka.start(env, heap="1g", secure=not insecure)
        security = maestro_setup.Security(env, insecure=insecure)
        _, address, names = await maestro_setup.start_server(env, pg, kf, root, security)
        server_kafka: KafkaSettings = security.kafka(kf, platform.SERVER_IDENTITY, server=True)
        admin = AdminClient(base_config(server_kafka))
        result.partitions_before, _, _ = await asyncio.to_thread(_count, admin, names)
        result.partitions_peak = result.partitions_before
        await _churn(
            result,
            MaestroClient(address, source="bench", credentials=security.credentials()),
            admin,
            names,
            progress,
        )
        progress("[bench] waiting for the broker to finish deleting ...")
        for _ in range(60):
            result.partitions_after, result.topics_left, result.acls_left = await asyncio.to_thread(
                _count, admin, names
            )
            if not result.topics_left:
                break
            await asyncio.sleep(1)
        finished = True
    finally:
        maestro_setup.end_run(env, root, keep_logs=not finished, report=progress)
    return result


async def _churn(
    result: ChurnResult, client: MaestroClient, admin: AdminClient, names: layout.Layout, progress: Progress
) -> None:
    gate = asyncio.Semaphore(result.concurrency)
    creates: list[float] = []
    deletes: list[float] = []
    done = 0

    async def cycle(n: int) -> None:
        nonlocal done
        async with gate:
            started = time.perf_counter()
            await client.create_consumer(f"churn-{n}")
            created = time.perf_counter()
            await client.delete_consumer(f"churn-{n}")
            creates.append(created - started)
            deletes.append(time.perf_counter() - created)
            done += 1

    async def sample() -> None:
        while True:
            partitions, _, _ = await asyncio.to_thread(_count, admin, names)
            result.partitions_peak = max(result.partitions_peak, partitions)
            progress(f"[bench] {done}/{result.consumers} registered and deleted; {partitions} partitions")
            await asyncio.sleep(5)

    started = time.perf_counter()
    sampler = asyncio.create_task(sample())
    try:
        async with client:
            await asyncio.gather(*(cycle(n) for n in range(result.consumers)))
    finally:
        sampler.cancel()
    result.seconds = time.perf_counter() - started
    result.create_ms_mean = 1000 * sum(creates) / len(creates)
    result.delete_ms_mean = 1000 * sum(deletes) / len(deletes)
