"""The real agent process: one cluster, its own Kafka partition, a kube-apiserver to apply to.

The placement (which spec partition is this cluster's) is read once from the server's query API;
after that the agent talks only to Kafka and its cluster. Offsets are committed after a batch is
applied and reported, so a crash re-reads the batch, and re-applying it changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from dataclasses import dataclass, field

import grpc
from confluent_kafka import KafkaError, KafkaException

from maestro.agent.kube import KubeApplier
from maestro.agent.runner import Agent
from maestro.agent.watcher import AppliedObjectWatcher
from maestro.api import consumers
from maestro.transport import clients, layout
from maestro.wire import query as wire_query
from maestro.wire import stubs

log = logging.getLogger(__name__)

# Status reports are published with `Publisher.deliver`: a broker restart is waited out (the
# producer keeps every report queued until Kafka acknowledges it), and a report Kafka definitely
# refused for a transient reason is sent again; only a permanent refusal (e.g. too large) raises,
# and the agent exits, to resync on start.


def _transient(exc: KafkaException) -> bool:
    error = exc.args[0] if exc.args else None
    return isinstance(error, KafkaError) and not error.fatal()


@dataclass(frozen=True)
class AgentSettings:
    cluster: str
    kubeconfig: str | None
    kafka: str
    server: str
    topics: layout.Layout = field(default_factory=layout.Layout)
    # Changes are watched; the periodic re-read of every applied object is the safety net.
    refresh_seconds: float = 60.0
    batch: int = 500
    # Polling this long with nothing received while the broker holds more for the agent's
    # partition means the consumer is stuck (it can be, after a broker restart): it is restarted.
    stall_seconds: float = 20.0


async def lookup_placement(server: str, cluster: str, timeout: float = 60.0) -> consumers.Consumer:
    """The consumer record of this cluster; waits for the server, fails clearly if unregistered."""
    async with grpc.aio.insecure_channel(server) as channel:
        stub = stubs.query_grpc.MaestroQueryStub(channel)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                reply = await stub.GetConsumer(stubs.query.GetConsumerRequest(name=cluster), timeout=10)
                return wire_query.consumer_from_pb(reply)
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND:
                    raise SystemExit(
                        f"cluster {cluster!r} is not registered with Maestro at {server}: "
                        f"run `fleetplane maestro consumers create {cluster}` first"
                    ) from None
                if asyncio.get_running_loop().time() > deadline:
                    raise SystemExit(f"cannot reach Maestro at {server}: {exc.details()}") from None
                await asyncio.sleep(1)


async def run(settings: AgentSettings, *, ready: asyncio.Event | None = None) -> None:
    consumer = await lookup_placement(settings.server, settings.cluster)
    applier = KubeApplier(settings.cluster, settings.kubeconfig)
    publisher = clients.Publisher(settings.kafka, client_id=f"agent-{settings.cluster}")
    reader = clients.Reader(
        settings.kafka,
        settings.topics.agent_group(settings.cluster),
        client_id=f"agent-{settings.cluster}",
        stall_after=settings.stall_seconds,
    )
    await asyncio.to_thread(
        reader.assign, [(consumer.spec_placement.topic, consumer.spec_placement.partition)]
    )
    publish = functools.partial(publisher.deliver, what=f"{settings.cluster}: status reports")
    # The watcher starts watching when the agent's start lists its records.
    watcher = AppliedObjectWatcher(applier.backend.rest, lambda rids: agent.mark_changed(rids))
    agent = Agent(applier, publish, status_topic=settings.topics.status_topic, follow=watcher.follow)
    await agent.start()
    background = [
        asyncio.create_task(agent.refresh_forever(settings.refresh_seconds), name="agent-refresh"),
        asyncio.create_task(agent.changes_forever(), name="agent-changes"),
    ]
    log.info(
        "agent for %s reading %s[%d]",
        settings.cluster,
        consumer.spec_placement.topic,
        consumer.spec_placement.partition,
    )
    if ready is not None:
        ready.set()
    try:
        while True:
            # A broker restart or a moved group coordinator must not stop the agent: the consumer
            # reconnects by itself. An uncommitted batch is covered by the next commit, or re-read
            # after a crash (and skipped: its versions are applied).
            try:
                messages = await reader.poll_batch(settings.batch, 0.5)
            except KafkaException as exc:
                if not _transient(exc):
                    raise
                log.warning("%s: reading spec events failed, retrying: %s", settings.cluster, exc)
                await asyncio.sleep(1)
                continue
            if messages:
                await agent.handle(messages)
                try:
                    await reader.commit(messages)
                except KafkaException as exc:
                    if not _transient(exc):
                        raise
                    log.warning(
                        "%s: committing offsets failed (the next commit covers them): %s",
                        settings.cluster,
                        exc,
                    )
    finally:
        for task in background:
            task.cancel()
        for task in background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await watcher.close()
        reader.close()
        await asyncio.to_thread(publisher.close)
        await applier.close()
