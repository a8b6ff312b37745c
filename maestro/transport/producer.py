"""The producer servers and agents publish with: idempotent, and asyncio-friendly.

Handing a message to the producer does not block, and one thread per producer serves its delivery
reports and wakes the waiting coroutines, so a publish costs no thread hop of its own; the calls
that do block (a metadata refresh) go to a thread, so the event loop never waits on Kafka.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from maestro.transport.client_config import base_config, max_message_bytes
from maestro.transport.connection import KafkaSettings
from maestro.transport.delivery import Delivery, retriable
from maestro.transport.errors import AuthorizationError, kafka_error
from maestro.transport.messages import Outgoing

log = logging.getLogger(__name__)

# How long librdkafka keeps trying to deliver a message (its message.timeout.ms): a message
# produced is either delivered or reported failed within this, whatever the broker does meanwhile.
DELIVERY_TIMEOUT = 300.0


def _serve_reports(producer: Producer, closing: threading.Event) -> None:
    while not closing.is_set():
        producer.poll(0.1)


class _Produced(enum.Enum):
    SENT = enum.auto()  # queued, or refused at once and recorded as failed
    FULL = enum.auto()
    STALE = enum.auto()


class Publisher:
    """An idempotent producer: retries never duplicate or reorder a partition's messages."""

    #: who Kafka knows this producer as, for messages
    _principal = "this client"

    def __init__(
        self, kafka: KafkaSettings, *, bundle_limit: int = 1024 * 1024, client_id: str = "maestro"
    ) -> None:
        self._principal = kafka.principal
        self._attach(
            Producer(
                {
                    **base_config(kafka),
                    "client.id": client_id,
                    "enable.idempotence": True,
                    "acks": "all",
                    "linger.ms": 5,
                    "compression.type": "lz4",
                    "message.max.bytes": max_message_bytes(bundle_limit),
                    "message.timeout.ms": int(DELIVERY_TIMEOUT * 1000),
                }
            )
        )

    def _attach(self, producer: Producer) -> None:
        self._producer = producer
        self._reports: threading.Thread | None = None
        self._closing = threading.Event()

    def _serving(self) -> None:
        """Start the thread that serves delivery reports (once, on the first asynchronous use).
        It holds the producer, not this publisher: one dropped without `close` still stops it."""
        if self._reports is None:
            self._reports = threading.Thread(
                target=_serve_reports, args=(self._producer, self._closing), name="kafka-reports", daemon=True
            )
            weakref.finalize(self, self._closing.set)
            self._reports.start()

    def _produce(self, delivery: Delivery, index: int, *, may_be_stale: bool) -> _Produced:
        """Hand one message to the producer: ``FULL`` while its queue is full (try again later),
        ``STALE`` for a partition its metadata does not know yet when ``may_be_stale`` (refresh
        it, then try again). A message the producer refuses at once otherwise (e.g. its partition
        is unknown while the broker restarts) counts as failed, like one Kafka refused later."""
        item = delivery.items[index]

        def delivered(err: KafkaError | None, msg: Message) -> None:
            delivery.record(index, err)

        kwargs: dict[str, Any] = {
            "key": item.key,
            "value": item.value,
            "headers": item.headers,
            "on_delivery": delivered,
        }
        if item.partition is not None:
            kwargs["partition"] = item.partition
        try:
            self._producer.produce(item.topic, **kwargs)
        except BufferError:
            return _Produced.FULL
        except KafkaException as exc:
            error = kafka_error(exc)
            if may_be_stale and error is not None and error.code() == KafkaError._UNKNOWN_PARTITION:
                return _Produced.STALE
            delivery.record(index, error or KafkaError(KafkaError._FAIL, str(exc)))
        return _Produced.SENT

    def _refresh(self, topic: str) -> None:
        """Read the topic's partitions again. The producer refreshes its metadata only every few
        minutes, and until then refuses a partition added since (a newly registered cluster's)."""
        try:
            self._producer.list_topics(topic, timeout=10)
        except KafkaException as exc:
            log.warning("reading the partitions of %s failed: %s", topic, exc)

    def _producing(self, delivery: Delivery) -> Iterator[tuple[_Produced, str]]:
        """Hand every message of ``delivery`` to the producer; yield what to do before going on
        (``FULL``: let the queue drain; ``STALE``: read that topic's partitions again)."""
        refreshed: set[str] = set()
        for index, item in enumerate(delivery.items):
            while (
                produced := self._produce(delivery, index, may_be_stale=item.topic not in refreshed)
            ) is not _Produced.SENT:
                if produced is _Produced.STALE:
                    refreshed.add(item.topic)
                yield produced, item.topic

    def send_sync(self, items: Sequence[Outgoing]) -> Delivery:
        """Hand every message to the producer; the returned `Delivery` tracks what becomes of them."""
        delivery = Delivery(items)
        for produced, topic in self._producing(delivery):
            if produced is _Produced.FULL:
                self._producer.poll(0.05)
            else:
                self._refresh(topic)
        return delivery

    def wait_sync(self, delivery: Delivery, timeout: float) -> bool:
        """Serve delivery reports until every message of `delivery` is settled or `timeout` passes.

        Returns whether it settled. Unsettled messages stay queued: the producer keeps retrying
        them (at most `DELIVERY_TIMEOUT`), so a later wait sees them delivered or failed.
        """
        deadline = time.monotonic() + timeout
        while not delivery.settled:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._producer.poll(min(0.02, remaining))
        return True

    def publish_sync(self, items: Sequence[Outgoing], timeout: float = 30.0) -> None:
        """Publish and wait until Kafka acknowledged every message; raise if any failed or is pending."""
        delivery = self.send_sync(items)
        if not self.wait_sync(delivery, timeout) or delivery.failed:
            raise self._failure(delivery)

    async def publish(self, items: Sequence[Outgoing], timeout: float = 30.0) -> None:
        """Publish and wait until Kafka acknowledged every message; raise if any failed or is pending."""
        delivery = await self.send(items)
        if not await self.wait(delivery, timeout) or delivery.failed:
            raise self._failure(delivery)

    def _failure(self, delivery: Delivery) -> Exception:
        refused = delivery.refused()
        if refused is not None:
            topic, error = refused
            return AuthorizationError(self._principal, f"writing to {topic}", error)
        return delivery.error()

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (for at most ``timeout``), then stop the producer's threads: one
        left to the garbage collector outlives a stopped broker and logs each reconnection.

        What is still undelivered is dropped, its senders told so (as after a crash, the outbox
        and the agents' resync send it again); the producer's own close would wait for it until
        its delivery timeout.
        """
        self._closing.set()
        if self._reports is not None:
            self._reports.join()
        if self._producer.flush(timeout):
            self._producer.purge()
            self._producer.flush(0)
        self._producer.close()

    async def send(self, items: Sequence[Outgoing]) -> Delivery:
        """`send_sync` on the event loop: a full producer queue is waited out without blocking it."""
        self._serving()
        delivery = Delivery(items)
        for produced, topic in self._producing(delivery):
            if produced is _Produced.FULL:
                await asyncio.sleep(0.05)
            else:
                await asyncio.to_thread(self._refresh, topic)
        return delivery

    async def wait(self, delivery: Delivery, timeout: float) -> bool:
        """`wait_sync` on the event loop: whether every message of ``delivery`` settled in time."""
        self._serving()
        return await delivery.settled_within(timeout)

    async def deliver(self, items: Sequence[Outgoing], *, what: str = "events") -> None:
        """Publish and never give up on a transient failure: wait out a broker outage, then send again.

        Each message is sent again only once Kafka has definitely refused it (a retriable error such
        as a delivery timeout), never while the producer may still deliver it: nothing is written
        twice by this call. A permanent error (message too large, not authorized...) raises.
        """
        pending = list(items)
        pause = 0.5
        while pending:
            delivery = await self.send(pending)
            waited = 0.0
            while not await self.wait(delivery, 10.0):
                waited += 10.0
                log.warning(
                    "%s: %d of %d not acknowledged by Kafka after %.0fs; still trying",
                    what,
                    delivery.pending,
                    len(pending),
                    waited,
                )
            permanent = [err for _, err in delivery.failed if not retriable(err)]
            if permanent:
                raise self._failure(delivery)
            if delivery.failed:
                log.warning("%s: sending %s again", what, delivery.error())
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
            pending = delivery.failed_items()
