"""Registering and removing consumers with what they have in Kafka, for every API that does it
(the query API and the REST API): a consumer exists exactly while its topics and ACLs do."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from confluent_kafka import KafkaException

from maestro.api import consumers, errors
from maestro.storage import store as store_mod
from maestro.transport.admin import Topics
from maestro.transport.errors import AuthorizationError


class ConsumerAdmin:
    def __init__(
        self,
        store: store_mod.Store,
        topics: Topics,
        on_created: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._store = store
        self._topics = topics
        self._created = on_created

    async def create(self, name: str, labels: Mapping[str, str]) -> consumers.Consumer:
        # The cluster's topics and ACLs exist before the consumer does: its agent, told its
        # placement, can read and report at once.
        consumer = await self._store.create_consumer(name, dict(labels), provision=self._provision)
        if self._created is not None:
            await self._created()
        return consumer

    async def delete(self, name: str) -> None:
        # Its cluster loses its ACLs and topics before the consumer goes.
        await self._store.delete_consumer(name, deprovision=self._deprovision)

    async def _provision(self, consumer: consumers.Consumer) -> None:
        what = f"creating the Kafka topics and ACLs of {consumer.name}"
        await _kafka_call(self._topics.provision([consumer]), what)

    async def _deprovision(self, consumer: consumers.Consumer) -> None:
        what = f"removing the Kafka ACLs and topics of {consumer.name}"
        await _kafka_call(self._topics.deprovision([consumer]), what)


async def _kafka_call(call: Awaitable[None], what: str) -> None:
    """Kafka's refusal or absence as the caller's error (the transaction is rolled back)."""
    try:
        await call
    except AuthorizationError as exc:
        fix = "give the server a certificate of a Kafka super user (super.users)"
        raise errors.Unavailable(f"{what} failed: {exc}", fix) from exc
    except KafkaException as exc:
        fix = "check that Kafka is reachable, then try again"
        raise errors.Unavailable(f"{what} failed: {exc}", fix) from exc
