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
a consumer's events.

Each row is then settled on its own: the ones Kafka acknowledged are deleted, the ones it refused
for a transient reason (the broker away) are published again, and a refusal for good (too large
for its topic, a principal refused) counts against its row: after `attempts` of them the row moves
to the quarantine (`maestro.api.quarantine`), so one event Kafka will never take does not hold up
the rest of its consumer's events or anyone else's. An event published again after later ones of
its consumer were delivered arrives out of order; agents skip a version older than the one they
hold, so nothing older is ever applied over something newer.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from maestro.api import events, quarantine
from maestro.server.notifier import Notifier
from maestro.storage import store as store_mod
from maestro.transport import cloudevents
from maestro.transport.delivery import Delivery, retriable
from maestro.transport.errors import PublishError
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
        attempts: int = quarantine.DEFAULT_ATTEMPTS,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._notifier = notifier
        self._batch = batch
        self._lease = lease
        self._renew_every = renew_every
        self._give_up_after = give_up_after
        self._attempts = attempts
        self.published = 0
        self.failed_batches = 0
        #: events moved to the quarantine by this relay
        self.quarantined = 0

    async def run(self) -> None:
        while True:
            try:
                heard = self._notifier.heard(store_mod.OUTBOX_CHANNEL)
                if await self.relay_once() < self._batch:
                    # A claim short of a full batch took every row then claimable: claim again once
                    # a commit since rings (at once if one already did), not straight away for an
                    # empty claim, a transaction per event when events come one at a time.
                    await self._notifier.wait(store_mod.OUTBOX_CHANNEL, 1.0, heard=heard)
            except asyncio.CancelledError:
                raise
            except PublishError as exc:
                self.failed_batches += 1
                log.warning("outbox relay: Kafka did not take every event; publishing them again: %s", exc)
                await asyncio.sleep(1)
            except Exception:
                self.failed_batches += 1
                log.exception("outbox relay failed; retrying (its rows stay in the outbox)")
                await asyncio.sleep(1)

    async def relay_once(self) -> int:
        entries = await self._store.claim_outbox(self._batch, lease=self._lease)
        if not entries:
            return 0
        readable, refused = self._readable(entries)
        consumers = sorted({e.consumer for e in entries})
        # Kafka refuses a whole record batch at once: an event refused before goes alone, so that
        # a refusal counts only against the event that causes it, never against its neighbours.
        groups = [[item for item in readable if item[0].attempts == 0]]
        groups += [[item] for item in readable if item[0].attempts > 0]
        acked: list[int] = []
        unsettled: list[Delivery] = []
        for group in groups:
            if not group:
                continue
            try:
                delivery = await self._publisher.send(
                    [
                        cloudevents.to_message(event, topic=e.topic, key=e.consumer, partition=e.partition)
                        for e, event in group
                    ]
                )
            except Exception:
                # Nothing more was handed to the producer: the rest can be claimed again at once.
                await self._store.settle_outbox(acked, refused, self._attempts)
                raise
            await self._settle(delivery, consumers)
            acked += [group[i][0].id for i in delivery.delivered]
            refused += [
                (group[i][0].id, f"{group[i][0].topic}: {err}")
                for i, err in delivery.failed
                if not retriable(err)
            ]
            if not delivery.ok:
                unsettled.append(delivery)
        quarantined = await self._store.settle_outbox(acked, refused, self._attempts)
        self.published += len(acked)
        if quarantined:
            self.quarantined += quarantined
            log.error(
                "outbox relay: %d event(s) quarantined after %d refusals each (e.g. %s); "
                "`fleetplane maestro quarantine list` shows them",
                quarantined,
                self._attempts,
                refused[-1][1],
            )
        if unsettled or refused:
            # The rest is settled; the refused rows (those not quarantined) and the unsettled ones
            # are published again at the next claim.
            problems = [str(d.error()) for d in unsettled] + [reason for _, reason in refused[:3]]
            raise PublishError(f"{len(entries) - len(acked)} of {len(entries)} not delivered: {problems[:3]}")
        return len(entries)

    @staticmethod
    def _readable(
        entries: list[store_mod.OutboxEntry],
    ) -> tuple[list[tuple[store_mod.OutboxEntry, events.CloudEvent]], list[tuple[int, str]]]:
        """Each row's event, and the rows whose stored JSON does not decode (never sendable)."""
        sent: list[tuple[store_mod.OutboxEntry, events.CloudEvent]] = []
        unreadable: list[tuple[int, str]] = []
        for entry in entries:
            try:
                sent.append((entry, entry.event()))
            except Exception as exc:
                unreadable.append((entry.id, f"the stored event does not decode: {exc}"))
        return sent, unreadable

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
