"""The outbox relay: publishes committed spec events to each cluster's Kafka partition.

A spec change and its outbox row commit together, so an event exists iff its change does. The
relay leases rows (whole consumers at a time, so a cluster's events stay in order even with several
replicas), publishes them with the idempotent producer, waits for Kafka's acknowledgement, then
deletes them. A crash between publish and ack re-publishes on the next lease: agents apply by
resource version, so a repeat changes nothing.
"""

from __future__ import annotations

import asyncio
import logging

from maestro.server.notifier import Notifier
from maestro.storage import store as store_mod
from maestro.transport import clients, cloudevents

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(
        self,
        store: store_mod.Store,
        publisher: clients.Publisher,
        topics: clients.Topics,
        notifier: Notifier,
        batch: int = 1000,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._topics = topics
        self._notifier = notifier
        self._batch = batch
        self.published = 0
        # Spec-topic partitions known to exist; a new cluster's partition may not yet.
        self._partitions_known = 0

    async def run(self) -> None:
        while True:
            try:
                if not await self.relay_once():
                    await self._notifier.wait(store_mod.OUTBOX_CHANNEL, 1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay failed; retrying (leases expire, nothing is lost)")
                await asyncio.sleep(1)

    async def relay_once(self) -> int:
        entries = await self._store.claim_outbox(self._batch)
        if not entries:
            return 0
        highest = max(e.partition for e in entries)
        if highest >= self._partitions_known:
            await self._topics.ensure(highest)
            self._partitions_known = await asyncio.to_thread(self._topics.spec_partitions)
        messages = [
            cloudevents.to_message(e.event(), topic=e.topic, key=e.consumer, partition=e.partition)
            for e in entries
        ]
        await self._publisher.publish(messages)
        await self._store.ack_outbox([e.id for e in entries])
        self.published += len(entries)
        return len(entries)
