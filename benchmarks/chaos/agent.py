"""One simulated agent as a process of its own (``python -m benchmarks.chaos.agent``), to be killed -9.

The real agent's pieces — its placement lookup, Kafka link (reader assigned its cluster's spec
partition, publisher of its status topic), ``Agent`` loop and read loop — over a simulated cluster
that outlives the process (`cluster_store.LoggedBackend`), so a restart finds what it applied, as a
real agent finds it in its kube-apiserver. Its identity is the cluster's certificate, as deployed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from pathlib import Path

from benchmarks.chaos.cluster_store import LoggedBackend
from maestro.agent import service
from maestro.agent.agent_loop import Agent
from maestro.agent.memory import MemoryApplier
from maestro.agent.readiness import ReaderState
from maestro.transport import layout
from maestro.transport.connection import KafkaSettings, tls_dir_files
from maestro.wire.channels import Credentials

#: seconds between the agent's full status re-reads: nothing watches a simulated cluster
REFRESH_SECONDS = 2.0


async def serve(cluster: str, state: Path, server: str, kafka: str, tls_dir: Path, prefix: str) -> None:
    tls = tls_dir_files(tls_dir)
    settings = service.AgentSettings(
        cluster=cluster,
        kubeconfig=None,
        kafka=KafkaSettings.secure(kafka, tls),
        server=server,
        credentials=Credentials(tls=tls),
        topics=layout.Layout(prefix),
        refresh_seconds=REFRESH_SECONDS,
    )
    consumer = await service.lookup_placement(server, cluster, settings.credentials)
    service.check_identity(settings.kafka, consumer)
    link = service.KafkaLink(settings, consumer)
    await link.open()
    applier = MemoryApplier(cluster, backend=LoggedBackend(state))
    agent = Agent(applier, link.deliver, status_topic=consumer.status_topic)
    await agent.start()
    background = [
        asyncio.create_task(agent.refresh_forever(settings.refresh_seconds), name="agent-refresh"),
        asyncio.create_task(agent.changes_forever(), name="agent-changes"),
    ]
    try:
        await service.read_forever(settings, ReaderState(server), link, agent)
    finally:
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await link.close()
        await applier.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cluster", required=True)
    parser.add_argument("--state", type=Path, required=True, help="the simulated cluster's file")
    parser.add_argument("--server", required=True, help="a Maestro server's address, for the placement")
    parser.add_argument("--kafka", required=True, help="the bootstrap servers")
    parser.add_argument("--tls-dir", type=Path, required=True, help="the cluster's certificate")
    parser.add_argument("--topic-prefix", required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(args.cluster, args.state, args.server, args.kafka, args.tls_dir, args.topic_prefix))


if __name__ == "__main__":
    main()
