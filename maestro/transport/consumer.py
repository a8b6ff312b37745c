"""The consumer servers and agents read with: a group member or assigned partitions, which restarts
itself when it is stuck. Its blocking calls (poll) go to a thread and commits never wait, so the
event loop of a server or agent never waits on Kafka."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from maestro.transport import binding
from maestro.transport.client_config import base_config, max_message_bytes
from maestro.transport.connection import KafkaSettings
from maestro.transport.errors import AuthorizationError, authorization_failure, kafka_error, refused
from maestro.transport.messages import Incoming

log = logging.getLogger(__name__)

# How long starting a consumer afresh waits for the old one to leave its group.
CLOSE_WAIT = 10.0


def _incoming(msg: Message) -> Incoming:
    attributes, content_type = binding.decode(msg.headers())
    key = msg.key()
    return Incoming(
        topic=msg.topic() or "",
        partition=msg.partition() or 0,
        offset=msg.offset() or 0,
        key=key.decode(errors="replace") if isinstance(key, bytes) else key,
        attributes=attributes,
        content_type=content_type,
        value=msg.value(),
    )


def _watermarks(
    consumer: Consumer, keys: Sequence[tuple[str, int]], timeout: float
) -> dict[tuple[str, int], tuple[int, int]]:
    """The start and end offsets of these partitions at the broker, asked in two batched
    ListOffsets requests (the protocol's earliest and latest) rather than a round trip per
    partition: a server's status reader holds one partition per cluster, and checking 3,000 of
    them one by one kept its poll thread from reading for minutes."""
    if not keys:
        return {}
    found: dict[tuple[str, int], list[int]] = {key: [-1, -1] for key in keys}
    for index, spec in enumerate((OFFSET_BEGINNING, OFFSET_END)):
        asked = [TopicPartition(topic, partition, spec) for topic, partition in keys]
        for tp in consumer.offsets_for_times(asked, timeout=timeout):
            if tp.error is not None:
                raise KafkaException(tp.error)
            found[(tp.topic, tp.partition)][index] = tp.offset
    return {key: (low, high) for key, (low, high) in found.items()}


class Reader:
    """A consumer that either joins a group (server replicas) or is assigned partitions (agents).

    A reader can watch its own progress (`stall_after`). librdkafka recovers from a broker
    restart by itself, but its consumer may stay stuck after one (a partition's fetcher, or its
    group membership) while the broker holds messages for it: seen as an agent that never read
    its partition again, and a server that never ingested another status. A reader that has polled
    for `stall_after` seconds without receiving anything while the broker's end offsets are past
    the next offsets to read (an assigned reader's own; a group's committed ones, which must also
    not have moved since the previous check: no other member is reading them either) replaces its
    consumer by a fresh one, as a process restart would: assigned at those offsets, or joining
    the group again (which resumes from the committed offsets).
    """

    def __init__(
        self,
        kafka: KafkaSettings,
        group: str,
        *,
        client_id: str = "maestro",
        bundle_limit: int = 1024 * 1024,
        stall_after: float | None = None,
        metadata_refresh: float | None = None,
    ) -> None:
        self._principal = kafka.principal
        self._group = group
        self._config: dict[str, Any] = {
            **base_config(kafka),
            "group.id": group,
            "client.id": client_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "fetch.max.bytes": max(52428800, max_message_bytes(bundle_limit)),
            "max.partition.fetch.bytes": max_message_bytes(bundle_limit),
            "isolation.level": "read_committed",
            # A dead server replica's status partitions move to the others after 10 s, not 45.
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 3000,
            # Warnings and errors only: a notice per partition-count change (every cluster
            # registered adds partitions) filled the fleet benchmark's progress output.
            "log_level": 4,
            "on_commit": self._committed_cb,
        }
        if metadata_refresh is not None:
            # A pattern subscription sees a topic created since only when the metadata is read
            # again (librdkafka's default: every 5 minutes).
            self._config["topic.metadata.refresh.interval.ms"] = int(metadata_refresh * 1000)
        self._consumer = Consumer(self._config)
        self._stall_after = stall_after
        # Assigned partitions -> the next offset this reader hands out (OFFSET_BEGINNING at first
        # if nothing was committed).
        self._next: dict[tuple[str, int], int] = {}
        # Subscribed topics (a group member); and the group's lag seen at the last check.
        self._topics: list[str] = []
        self._group_behind: dict[tuple[str, int], tuple[int, int]] = {}
        self._idle_since: float | None = None
        self._checked_at = 0.0
        self.restarts = 0
        self._refused_commit: KafkaError | None = None

    def subscribe(self, topics: Sequence[str]) -> None:
        """Join the group reading these topics; a name starting with ``^`` is a pattern, matching
        every topic it matches now and later."""
        self._topics = list(topics)
        self._consumer.subscribe(self._topics)

    def refresh_topics_sync(self, timeout: float = 10.0) -> None:
        """Read the cluster's topics now: a pattern subscription then matches a topic created since
        (librdkafka re-evaluates it on a metadata answer that lists every topic)."""
        self._consumer.list_topics(timeout=timeout)

    def assign(self, placements: Sequence[tuple[str, int]]) -> None:
        """Read exactly these partitions, from the offsets committed for this group.

        Refused by Kafka's authorizer, reading a topic or using the group, it raises
        `AuthorizationError`: an assigned consumer would otherwise wait on a topic it may not read
        without a word, and a group it may not use shows only as a timeout.
        """
        partitions = [TopicPartition(t, p) for t, p in placements]
        committed = self._committed(partitions)
        for tp in committed:
            if authorization_failure(tp.error):
                raise AuthorizationError(self._principal, f"reading {tp.topic}", tp.error)
        for tp in committed:
            if tp.offset < 0:
                tp.offset = OFFSET_BEGINNING  # nothing committed yet: read the whole partition
        self._next = {(tp.topic, tp.partition): tp.offset for tp in committed}
        self._consumer.assign(committed)

    def _committed(self, partitions: list[TopicPartition], timeout: float = 30.0) -> list[TopicPartition]:
        """The group's committed offsets of ``partitions``. A group this principal may not use
        makes the coordinator lookup fail, which librdkafka tells as an error event, the call
        itself only timing out: the events are read between shorter tries."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return list(self._consumer.committed(partitions, timeout=min(5.0, timeout)))
            except KafkaException as exc:
                error = kafka_error(exc)
                if error is None or error.code() != KafkaError._TIMED_OUT:
                    raise refused(exc, self._principal, f"the offsets of group {self._group}") from exc
                # Nothing is assigned yet (assign comes after): what this reads are error events.
                for event in self._consumer.consume(10, 0) if not self._next else ():
                    if authorization_failure(event.error()):
                        raise AuthorizationError(
                            self._principal, f"using group {self._group}", event.error()
                        ) from exc
                if time.monotonic() >= deadline:
                    raise

    def poll_batch_sync(self, max_messages: int, timeout: float) -> list[Incoming]:
        """The next messages; an error event among them is logged, never raised over them.

        `consume` has already moved the position past every message it returned: raising on an
        error event in the batch would drop the messages around it for good (the next batch and
        its commit come after them). Errors librdkafka recovers from by itself (a broker away or
        restarting, an offset reset) are logged. A fatal one raises: the consumer can neither read
        nor commit any more, so the process restarts from its committed offsets.
        """
        messages = self._consumer.consume(max_messages, timeout)
        out = []
        fatal: KafkaError | None = None
        refused: tuple[str, KafkaError] | None = None
        for msg in messages:
            err = msg.error()
            if err is None:
                out.append(_incoming(msg))
            elif err.fatal():
                fatal = fatal or err
            elif authorization_failure(err):
                what = f"reading {msg.topic()}" if msg.topic() else f"reading as group {self._group}"
                refused = refused or (what, err)
            elif err.code() != KafkaError._PARTITION_EOF:
                log.warning("consumer error at %s[%s]: %s", msg.topic(), msg.partition(), err)
        if fatal is not None:
            raise KafkaException(fatal)
        if self._refused_commit is not None:
            # Permanent, like a refused read: what this batch holds is read again by whoever may.
            error, self._refused_commit = self._refused_commit, None
            raise AuthorizationError(self._principal, f"committing offsets as group {self._group}", error)
        if refused is not None and not out:
            # Raised only once the messages before it are handed out: none is lost for it.
            raise AuthorizationError(self._principal, *refused)
        if out:
            self._idle_since = None
            for m in out:
                key = (m.topic, m.partition)
                if key in self._next:
                    self._next[key] = max(self._next[key], m.offset + 1)
        elif self._stall_after is not None and (self._next or self._topics):
            self._watch(self._stall_after)
        return out

    def _watch(self, stall_after: float) -> None:
        now = time.monotonic()
        if self._idle_since is None:
            self._idle_since = now
            return
        if now - self._idle_since < stall_after or now - self._checked_at < stall_after:
            return
        self._checked_at = now
        behind, answered = self._behind(timeout=5.0)
        if self._topics and answered:
            previous, self._group_behind = self._group_behind, behind
            moved = [k for k, (start, _) in behind.items() if k not in previous or previous[k][0] != start]
            if moved:
                return  # the group's committed offsets moved (or are new to us): not stuck, yet
        if behind:
            log.warning(
                "no message received for %.0fs although the broker holds more (next offset, end "
                "offset: %s); starting the consumer afresh",
                now - self._idle_since,
                ", ".join(f"{t}[{p}]: {n}, {end}" for (t, p), (n, end) in sorted(behind.items())),
            )
            self.restart_sync()
            self._idle_since = time.monotonic()
            self._group_behind = {}

    def behind_sync(self, timeout: float = 5.0) -> dict[tuple[str, int], tuple[int, int]]:
        """Partitions whose end offset at the broker is past the next offset to read.

        The next offset is the one this reader hands out next (assigned), or the group's committed
        offset (subscribed). Asked through the reader's own consumer, or, if that cannot answer
        (a stuck one may not), through a fresh one. Empty if neither can (the broker or the group
        coordinator is away: nothing to judge then).
        """
        return self._behind(timeout)[0]

    def _behind(self, timeout: float) -> tuple[dict[tuple[str, int], tuple[int, int]], bool]:
        """`behind_sync`, and whether the reader's own consumer could answer. A group member that
        cannot reach its coordinator while a fresh consumer can is stuck on it: it needs no second
        look to tell it from a member whose partitions another member is reading."""
        found = self._positions(self._consumer, timeout)
        answered = found is not None
        if found is None:
            probe = Consumer(self._config)
            try:
                found = self._positions(probe, timeout)
            finally:
                with contextlib.suppress(RuntimeError, KafkaException):
                    probe.close()
        if found is None:
            return {}, answered
        behind = {}
        for key, (next_offset, (low, high)) in found.items():
            start = low if next_offset < 0 else next_offset
            if high > start:
                behind[key] = (start, high)
        return behind, answered

    def _group_positions(self) -> dict[tuple[str, int], int]:
        """A subscribed reader's next offset of each partition the group gave it (none asked of
        the broker); {} when not subscribed or nothing is assigned yet."""
        if not self._topics:
            return {}
        try:
            held = self._consumer.position(self._consumer.assignment())
        except (KafkaException, RuntimeError):  # RuntimeError: a consumer replaced meanwhile, closed
            return {}
        return {(tp.topic, tp.partition): tp.offset for tp in held}

    def lag(self) -> int | None:
        """Messages of the assigned partitions the broker holds past the next offsets this reader
        hands out, from the end offsets its fetches last brought (no request to the broker: a
        scrape may ask at any time). None while unknown: nothing assigned, no fetch answered yet,
        or the start of a partition read from its beginning not known. A group member's next
        offsets are its assigned partitions' positions, as librdkafka holds them."""
        next_offsets = dict(self._next) if self._next else self._group_positions()
        if not next_offsets:
            return None
        total = 0
        for (topic, partition), next_offset in next_offsets.items():
            try:
                ends = self._consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
            except (KafkaException, RuntimeError):  # RuntimeError: a consumer replaced meanwhile, closed
                return None
            low, high = ends
            start = next_offset if next_offset >= 0 else low
            if high < 0 or start < 0:
                if high == 0:
                    continue  # an empty partition: nothing to read whatever its start
                return None
            total += max(0, high - start)
        return total

    def _positions(
        self, consumer: Consumer, timeout: float
    ) -> dict[tuple[str, int], tuple[int, tuple[int, int]]] | None:
        """Next offset to read and (low, end) offsets of every partition read; None if unknown."""
        try:
            if self._topics:
                partitions = self._subscribed(consumer, timeout)
                committed = consumer.committed(partitions, timeout=timeout)
                next_offsets = {(tp.topic, tp.partition): tp.offset for tp in committed}
            else:
                next_offsets = dict(self._next)
            ends = _watermarks(consumer, list(next_offsets), timeout)
            return {key: (offset, ends[key]) for key, offset in next_offsets.items()}
        except (KafkaException, KeyError) as exc:
            log.debug("cannot tell where the reader stands: %s", exc)
            return None

    def _subscribed(self, consumer: Consumer, timeout: float) -> list[TopicPartition]:
        """Every partition of the subscribed topics (a pattern's: of every topic it matches now)."""
        patterns = [re.compile(t) for t in self._topics if t.startswith("^")]
        partitions = []
        if patterns:
            everything = consumer.list_topics(timeout=timeout).topics
            for topic in sorted(t for t in everything if any(p.match(t) for p in patterns)):
                partitions += [TopicPartition(topic, p) for p in sorted(everything[topic].partitions)]
        for topic in (t for t in self._topics if not t.startswith("^")):
            metadata = consumer.list_topics(topic, timeout=timeout).topics[topic]
            partitions += [TopicPartition(topic, p) for p in sorted(metadata.partitions)]
        return partitions

    def restart_sync(self) -> None:
        """Replace the consumer by a fresh one: assigned at the next offsets, or joining the group."""
        old, self._consumer = self._consumer, Consumer(self._config)
        if self._topics:
            # Leave the group first, so that its partitions go to the fresh member at once; a
            # member stuck on its coordinator may never finish leaving, and then the group moves
            # its partitions after the session timeout.
            _close_within(old, CLOSE_WAIT)
            self._consumer.subscribe(self._topics)
        else:
            self._consumer.assign([TopicPartition(t, p, offset) for (t, p), offset in self._next.items()])
            _close_within(old, CLOSE_WAIT)
        self.restarts += 1

    async def poll_batch(self, max_messages: int = 500, timeout: float = 0.5) -> list[Incoming]:
        return await asyncio.to_thread(self.poll_batch_sync, max_messages, timeout)

    def commit_sync(self, messages: Sequence[Incoming]) -> None:
        """Commit past the last of each partition's messages (they have been handled).

        Asynchronous: a synchronous commit waits, without any bound, for a group coordinator that
        a consumer stuck after a broker restart never finds again, and the loop waiting on it
        would then never poll, so nothing could notice the stall and start the consumer afresh.
        A commit that fails is logged when the consumer next polls; the next one covers it, and a
        crash before then re-reads what it did not cover (handling a message twice is a no-op).
        """
        last: dict[tuple[str, int], int] = {}
        for m in messages:
            last[(m.topic, m.partition)] = max(last.get((m.topic, m.partition), -1), m.offset)
        if last:
            try:
                self._consumer.commit(
                    offsets=[TopicPartition(t, p, o + 1) for (t, p), o in last.items()], asynchronous=True
                )
            except KafkaException as exc:
                raise refused(exc, self._principal, f"committing offsets as group {self._group}") from exc

    async def commit(self, messages: Sequence[Incoming]) -> None:
        self.commit_sync(messages)  # never blocks: no thread needed

    def _committed_cb(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if error is None or error.code() == KafkaError._NO_OFFSET:
            return
        if authorization_failure(error):
            self._refused_commit = error  # raised by the poll serving this callback
        else:
            log.warning(
                "committing offsets as group %s failed (the next commit covers them): %s", self._group, error
            )

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, KafkaException):
            self._consumer.close()


def _close_within(consumer: Consumer, timeout: float) -> None:
    """Close a consumer, waiting at most ``timeout`` seconds: leaving the group needs its
    coordinator, which a stuck consumer may never reach again. The close goes on in a daemon
    thread past the wait."""

    def close() -> None:
        with contextlib.suppress(RuntimeError, KafkaException):
            consumer.close()

    closing = threading.Thread(target=close, name="kafka-consumer-close", daemon=True)
    closing.start()
    closing.join(timeout)
    if closing.is_alive():
        log.warning("the replaced consumer did not close within %.0fs; going on without it", timeout)
