"""What became of the messages of one publish call (`Delivery`), and which failures are worth
sending again for."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence

from confluent_kafka import KafkaError

from maestro.transport.errors import PublishError, authorization_failure
from maestro.transport.messages import Outgoing

# Delivery errors worth sending the message again for: the broker was away, restarting or moving
# a partition. Anything else (too large, not authorized, ...) will fail again the same way.
_RETRIABLE = frozenset(
    {
        KafkaError._MSG_TIMED_OUT,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._UNKNOWN_PARTITION,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
    }
)


def retriable(error: KafkaError) -> bool:
    """Whether sending again can succeed: a transient broker or network condition."""
    return error.code() in _RETRIABLE or (error.retriable() and not error.fatal())


class Delivery:
    """What became of one call's messages: each is pending until Kafka acknowledged or refused it.

    Tracked per call, not by the producer's queue length: a producer shared by several callers
    (the relay and the status ingester) has other messages queued, and a delivery report may be
    served by another caller's poll.
    """

    def __init__(self, items: Sequence[Outgoing]) -> None:
        self.items = list(items)
        self.delivered: list[int] = []
        self.failed: list[tuple[int, KafkaError]] = []
        self._lock = threading.Lock()
        self._settled = threading.Event()
        self._open = len(self.items)
        self._on_settled: list[Callable[[], None]] = []
        if not self._open:
            self._settled.set()

    def record(self, index: int, err: KafkaError | None) -> None:
        """Kafka acknowledged (``err`` None) or refused message ``index``: its delivery report."""
        callbacks: list[Callable[[], None]] = []
        with self._lock:
            if err is None:
                self.delivered.append(index)
            else:
                self.failed.append((index, err))
            self._open -= 1
            if self._open == 0:
                self._settled.set()
                callbacks, self._on_settled = self._on_settled, []
        for callback in callbacks:
            callback()

    async def settled_within(self, timeout: float) -> bool:
        """Wait on the event loop, without a thread, until every message is settled or ``timeout``
        passes; somebody must be serving the producer's delivery reports (`Publisher` does)."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def wake() -> None:
            with contextlib.suppress(RuntimeError):  # the loop may be closed by then
                loop.call_soon_threadsafe(_resolve, done)

        with self._lock:
            if self._open == 0:
                return True
            self._on_settled.append(wake)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await done
        return self.settled

    @property
    def pending(self) -> int:
        """Messages Kafka has neither acknowledged nor refused yet (still queued in the producer)."""
        with self._lock:
            return self._open

    @property
    def settled(self) -> bool:
        return self._settled.is_set()

    @property
    def ok(self) -> bool:
        """Every message acknowledged by Kafka."""
        return self.settled and not self.failed

    def failed_items(self) -> list[Outgoing]:
        with self._lock:
            return [self.items[i] for i, _ in sorted(self.failed, key=lambda f: f[0])]

    def error(self) -> PublishError:
        with self._lock:
            failures = [
                f"{self.items[i].topic}[{self.items[i].partition}]: {err}" for i, err in self.failed[:3]
            ]
            return PublishError(f"{len(self.failed)} failed, {self._open} unacknowledged: {failures}")

    def refused(self) -> tuple[str, KafkaError] | None:
        """A topic Kafka's authorizer refused a message of, with the error; None if none."""
        with self._lock:
            for index, err in self.failed:
                if authorization_failure(err):
                    return self.items[index].topic, err
        return None


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
