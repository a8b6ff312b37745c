"""Where an agent's cluster is placed, asked of Maestro now and again while the agent runs.

A cluster deleted and registered again under its name gets a new slot (new topics, a new
principal), and a consumer may be moved to other topics (as the migration to topics per cluster
did): the topics the agent reads and writes are then gone or no longer its own. Every
``every`` seconds, and at once when Kafka refuses the agent something for good, the agent reads its
consumer record again; when it changed, the agent follows it: it makes its Kafka clients for the new
topics and resyncs (the server answers with what the new registration holds, and the works of the
old one are removed). A new registration needs a certificate of its new identity: until the agent
has one (the provisioner issues it; the files are read again at each try), and while its cluster is
not registered at all, the agent waits and its ``/readyz`` says why.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable

import grpc

from maestro.api import consumers
from maestro.transport.connection import KafkaSettings
from maestro.wire import channels, stubs
from maestro.wire import query as wire_query
from trust.identity import Identity

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Answer:
    """What Maestro said of the cluster: its record, or the status code and message it answered."""

    consumer: consumers.Consumer | None = None
    code: grpc.StatusCode | None = None
    details: str = ""

    @property
    def settled(self) -> bool:
        """Whether the answer tells where the cluster stands (not a transport failure)."""
        return self.consumer is not None or self.code in (
            grpc.StatusCode.NOT_FOUND,
            grpc.StatusCode.PERMISSION_DENIED,
            grpc.StatusCode.UNAUTHENTICATED,
        )


def where(consumer: consumers.Consumer) -> tuple[object, ...]:
    """What the agent's Kafka clients depend on: the incarnation and the topics."""
    placement = consumer.spec_placement
    return (consumer.slot, placement.topic, placement.partition, consumer.status_topic)


async def ask(server: str, cluster: str, credentials: channels.Credentials, timeout: float = 10.0) -> Answer:
    """The cluster's consumer record as Maestro has it now (the credentials' files are read again)."""
    try:
        async with channels.aio_channel(server, credentials) as channel:
            stub = stubs.query_grpc.MaestroQueryStub(channel)
            reply = await stub.GetConsumer(stubs.query.GetConsumerRequest(name=cluster), timeout=timeout)
    except grpc.aio.AioRpcError as exc:
        return Answer(code=exc.code(), details=exc.details() or "")
    except Exception as exc:  # the certificate files being replaced, for one
        return Answer(code=grpc.StatusCode.UNAVAILABLE, details=str(exc))
    return Answer(consumer=wire_query.consumer_from_pb(reply))


def identity_problem(kafka: KafkaSettings, consumer: consumers.Consumer) -> str | None:
    """Why Kafka would not let this certificate read the consumer's topics; None if it would."""
    if not kafka.is_secure:
        return None
    wanted = Identity.cluster(consumer.name, consumer.placement_slot)
    try:
        found = kafka.identity()
    except (OSError, ValueError) as exc:
        return f"reading its certificate failed: {exc}"
    if found == wanted:
        return None
    return (
        f"the Kafka certificate ({kafka.tls.cert if kafka.tls else '-'}) is for "
        f"{found or 'no fleetplane identity'}, but consumer {consumer.name} is {wanted} "
        f"(principal {wanted.kafka_principal_as(kafka.principals)}): issue the agent a certificate of "
        "that identity"
    )


class PlacementWatch:
    """Tells when the consumer an agent serves moved (re-registered, other topics, or deleted)."""

    def __init__(
        self,
        server: str,
        current: consumers.Consumer,
        credentials: channels.Credentials,
        every: float,
    ) -> None:
        self._server = server
        self._current = current
        self._credentials = credentials
        self._every = every

    async def moved(self) -> Answer | None:
        """Maestro's answer if the consumer is no longer where the agent reads; None if it is (or
        Maestro could not be asked)."""
        answer = await ask(self._server, self._current.name, self._credentials)
        if not answer.settled:
            log.debug("%s: asking Maestro for its placement failed: %s", self._current.name, answer.details)
            return None
        if answer.consumer is not None and where(answer.consumer) == where(self._current):
            return None
        return answer

    async def until_moved(self) -> Answer:
        while True:
            await asyncio.sleep(self._every)
            answer = await self.moved()
            if answer is not None:
                return answer


def describe(cluster: str, answer: Answer) -> str:
    if answer.consumer is not None:
        c = answer.consumer
        return (
            f"consumer {cluster} is now incarnation {c.slot} on {c.spec_placement.topic} and {c.status_topic}"
        )
    if answer.code == grpc.StatusCode.NOT_FOUND:
        return f"cluster {cluster} is no longer registered with Maestro"
    return f"Maestro refuses this certificate: {answer.details}"


async def follow(
    server: str,
    cluster: str,
    credentials: channels.Credentials,
    kafka: KafkaSettings,
    waiting: Callable[[str], None],
    every: float = 2.0,
) -> consumers.Consumer:
    """Wait until the cluster is registered and this agent's certificate is of its identity; each
    reason to wait is told to ``waiting`` (and logged when it changes). Returns the record."""
    said = ""
    while True:
        answer = await ask(server, cluster, credentials)
        if answer.consumer is not None:
            problem = identity_problem(kafka, answer.consumer)
            if problem is None and answer.consumer.status_topic:
                return answer.consumer
            why = problem or f"Maestro at {server} names no status topic for {cluster}: upgrade it"
        elif answer.code == grpc.StatusCode.NOT_FOUND:
            why = f"cluster {cluster} is not registered with Maestro at {server}; waiting for it to be"
        elif answer.code == grpc.StatusCode.PERMISSION_DENIED:
            why = f"Maestro at {server} refuses this agent's certificate: {answer.details}"
        else:
            code = answer.code.name if answer.code else "?"
            why = f"asking Maestro at {server} failed: {code}: {answer.details}"
        waiting(why)
        if why != said:
            log.warning("%s: %s", cluster, why)
            said = why
        await asyncio.sleep(every)
