"""The outbox relay: publishes committed spec events to each cluster's Kafka topic.

A spec change and its outbox row commit together, so an event exists iff its change does. The
relay leases rows (whole consumers at a time, so a cluster's events stay in order even with several
replicas), publishes them with the idempotent producer, waits for Kafka's acknowledgement of every
one, then deletes them. A crash between publish and ack re-publishes on the next lease: agents apply
by resource version, so a repeat changes nothing.

While the broker is away (a restart), the relay does not give up on a batch it handed to the
producer: the producer keeps every message queued and retries it until Kafka acknowledges or
refuses it (`producer.DELIVERY_TIMEOUT`). The relay waits for that outcome and keeps its leases
alive meanwhile: publishing the rows again (or letting another replica do so) while the first
copies may still be delivered would only queue duplicates, and across two producers could reorder
a consumer's events. Rows are acked only once all their messages are acknowledged; if any is
refused, the leases are released at once and the rows are published again (at least once).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from maestro.server.notifier import Notifier
from maestro.storage import store as store_mod
from maestro.transport import cloudevents
from maestro.transport.delivery import Delivery
from maestro.transport.producer import DELIVERY_TIMEOUT, Publisher

log = logging.getLogger(__name__)


# How long a claimed consumer stays leased without a renewal, and how often a relay waiting for
# Kafka renews it.
LEASE = timedelta(seconds=30)
RENEW_EVERY = 10.0
# A batch still unsettled this long after it was produced is given up (librdkafka settles every
# message within DELIVERY_TIMEOUT; this only guards against a producer that never reports).
GIVE_UP_AFTER = DELIVERY_TIMEOUT + 60.0


class OutboxRelay:
    def __init__(
        self,
        store: store_mod.Store,
        publisher: Publisher,
        notifier: Notifier,
        batch: int = 1000,
        *,
        lease: timedelta = LEASE,
        renew_every: float = RENEW_EVERY,
        give_up_after: float = GIVE_UP_AFTER,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._notifier = notifier
        self._batch = batch
        self._lease = lease
        self._renew_every = renew_every
        self._give_up_after = give_up_after
        self.published = 0
        self.failed_batches = 0

    async def run(self) -> None:
        while True:
            try:
                if not await self.relay_once():
                    await self._notifier.wait(store_mod.OUTBOX_CHANNEL, 1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.failed_batches += 1
                log.exception("outbox relay failed; retrying (its rows stay in the outbox)")
                await asyncio.sleep(1)

    async def relay_once(self) -> int:
        entries = await self._store.claim_outbox(self._batch, lease=self._lease)
        if not entries:
            return 0
        try:
            delivery = await self._send(entries)
        except Exception:
            # Nothing was handed to the producer: the rows can be claimed again at once.
            await self._release()
            raise
        consumers = sorted({e.consumer for e in entries})
        await self._settle(delivery, consumers)
        if not delivery.ok:
            # Kafka refused some (or never answered): publish these rows again, from the first.
            await self._release()
            raise delivery.error()
        await self._store.ack_outbox([e.id for e in entries])
        self.published += len(entries)
        return len(entries)

    async def _send(self, entries: list[store_mod.OutboxEntry]) -> Delivery:
        # Every consumer's spec topic was made with it (and is repaired when a server starts).
        messages = [
            cloudevents.to_message(e.event(), topic=e.topic, key=e.consumer, partition=e.partition)
            for e in entries
        ]
        return await self._publisher.send(messages)

    async def _settle(self, delivery: Delivery, consumers: list[str]) -> None:
        """Wait until Kafka acknowledged or refused every message, renewing the leases meanwhile."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        while not await self._publisher.wait(delivery, self._renew_every):
            waited = loop.time() - started
            if waited >= self._give_up_after:
                log.error(
                    "outbox relay: %d of %d events unsettled after %.0fs; publishing them again",
                    delivery.pending,
                    len(delivery.items),
                    waited,
                )
                return
            log.warning(
                "outbox relay: Kafka has not acknowledged %d of %d events after %.0fs; waiting "
                "(the producer retries them; leases of %s renewed)",
                delivery.pending,
                len(delivery.items),
                waited,
                ", ".join(consumers),
            )
            try:
                kept = await self._store.renew_outbox(consumers, self._lease)
            except Exception:
                log.exception("outbox relay: renewing leases failed; still waiting for Kafka")
                continue
            if kept < len(consumers):
                log.warning(
                    "outbox relay: lost %d of %d leases while waiting for Kafka; "
                    "their events may be published twice",
                    len(consumers) - kept,
                    len(consumers),
                )

    async def _release(self) -> None:
        try:
            await self._store.release_outbox()
        except Exception:
            log.exception("outbox relay: releasing leases failed (they expire by themselves)")
