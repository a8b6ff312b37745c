"""Topic and ACL management: each consumer's topics and its cluster's ACLs, made and removed as
consumers come and go. The admin client's calls block, so the asynchronous ones go to a thread."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AclBinding, AclBindingFilter, AdminClient, NewTopic, ResourceType

from maestro.api import consumers
from maestro.transport import layout
from maestro.transport.acls import acl_key, cluster_acls, every_acl
from maestro.transport.client_config import base_config, max_message_bytes
from maestro.transport.connection import KafkaSettings
from maestro.transport.errors import PublishError, kafka_error, refused
from trust.identity import cluster_incarnation

log = logging.getLogger(__name__)


class Topics:
    """Each consumer's topics and its cluster's ACLs: made when it is registered, removed when it
    is deleted, repaired when the server starts. Needs a principal that may create topics and
    ACLs (the Maestro server's, a super user)."""

    def __init__(
        self, kafka: KafkaSettings, *, bundle_limit: int = 1024 * 1024, names: layout.Layout = layout.DEFAULT
    ) -> None:
        self._principal = kafka.principal
        self._form = kafka.principals
        self._admin = AdminClient(base_config(kafka))
        self._names = names
        # A plaintext broker has no authorizer to hold ACLs (and refuses them).
        self._acls = kafka.is_secure
        self._config = {"max.message.bytes": str(max_message_bytes(bundle_limit))}

    def _cluster_acls(self, of: Sequence[consumers.Consumer]) -> list[AclBinding]:
        return [acl for consumer in of for acl in cluster_acls(consumer, self._names, self._form)]

    def _new_topics(self, made: Sequence[consumers.Consumer]) -> list[NewTopic]:
        out = []
        for consumer in made:
            for topic in (consumer.spec_placement.topic, consumer.status_topic):
                out.append(NewTopic(topic, 1, 1, config=self._config))
        return out

    def _wait(self, futures: dict[Any, Any], what: str, tolerated: frozenset[int] = frozenset()) -> None:
        for key, fut in futures.items():
            try:
                fut.result(60)
            except KafkaException as exc:
                error = kafka_error(exc)
                if error is not None and error.code() in tolerated:
                    continue
                raise refused(exc, self._principal, f"{what} {key}") from exc

    def provision_sync(self, made: Sequence[consumers.Consumer]) -> None:
        """Create the consumers' topics and grant their clusters' ACLs (both idempotent); return
        once the broker enforces the ACLs, so that an agent started next is let in."""
        if not made:
            return
        acls = self._cluster_acls(made)
        self._create_topics(self._new_topics(made))
        if self._acls:
            self._wait(self._admin.create_acls(acls, request_timeout=60), "creating ACL")
            self._until_enforced(acls)

    def _until_enforced(self, acls: Sequence[AclBinding], timeout: float = 30.0) -> None:
        """Wait until the broker's authorizer holds ``acls``. The controller has committed them
        when CreateAcls answers, but a broker applies the metadata a moment later: on a busy
        broker, a client let in by them could be refused meanwhile."""
        wanted = {acl_key(acl) for acl in acls}
        principals = sorted({acl.principal for acl in acls})
        deadline = time.monotonic() + timeout
        while True:
            held: set[tuple[str, ...]] = set()
            for principal in principals:
                held |= {acl_key(b) for b in self.acls_of_sync(principal)}
            if wanted <= held:
                return
            if time.monotonic() >= deadline:
                raise PublishError(
                    f"the broker does not enforce {len(wanted - held)} ACL(s) after {timeout:.0f}s"
                )
            time.sleep(0.05)

    def _create_topics(self, new: list[NewTopic]) -> None:
        if new:
            self._wait(
                self._admin.create_topics(new, operation_timeout=30),
                "creating topic",
                frozenset({KafkaError.TOPIC_ALREADY_EXISTS}),
            )

    def deprovision_sync(self, gone: Sequence[consumers.Consumer]) -> None:
        """Revoke the consumers' clusters' ACLs, then delete their topics (both idempotent).

        Each binding is removed exactly: the same principal may hold ACLs under another prefix
        (another Maestro database on the same broker), which stay.
        """
        if not gone:
            return
        if self._acls:
            filters = [exactly(acl) for acl in self._cluster_acls(gone)]
            self._wait(self._admin.delete_acls(filters, request_timeout=60), "deleting ACLs")
        self._delete_topics(
            [t for consumer in gone for t in (consumer.spec_placement.topic, consumer.status_topic)]
        )
        # The agents' groups go too (their offsets name deleted topics), as a courtesy: one an agent
        # still reads under stays, one that cannot be deleted now expires with Kafka's offset
        # retention, and neither keeps the consumer registered.
        groups = [self._names.agent_group(consumer.name) for consumer in gone]
        try:
            self._wait(
                self._admin.delete_consumer_groups(groups, request_timeout=30),
                "deleting group",
                frozenset({KafkaError.GROUP_ID_NOT_FOUND, KafkaError.NON_EMPTY_GROUP}),
            )
        except Exception as exc:
            log.warning(
                "deleting the agent groups %s failed (Kafka expires them): %s", ", ".join(groups), exc
            )

    def _delete_topics(self, topics: Sequence[str]) -> None:
        self._wait(
            self._admin.delete_topics(list(topics), operation_timeout=30),
            "deleting topic",
            frozenset({KafkaError.UNKNOWN_TOPIC_OR_PART}),
        )

    def release_orphans_sync(self, registered: set[int]) -> list[str]:
        """Delete this layout's topics whose slot no registered consumer holds (a registration whose
        transaction did not commit after its topics were made), with every ACL naming them or
        their principals' groups; returns the topics deleted. Run it while no consumer is being
        registered (`Store.sweep`)."""
        existing = self._admin.list_topics(timeout=30).topics
        orphans = sorted(
            t for t in existing if (slot := self._names.topic_slot(t)) is not None and slot not in registered
        )
        if not orphans:
            return []
        if self._acls:
            slots = {self._names.topic_slot(t) for t in orphans}
            try:
                listed = self._admin.describe_acls(every_acl(), request_timeout=60).result(60)
            except KafkaException as exc:
                raise refused(exc, self._principal, "listing ACLs") from exc
            stale = [
                b
                for b in listed
                if (b.restype == ResourceType.TOPIC and b.name in orphans)
                or (
                    b.restype == ResourceType.GROUP
                    and b.name.startswith(self._names.agent_group_prefix)
                    and cluster_incarnation(b.principal) in slots
                )
            ]
            if stale:
                self._wait(
                    self._admin.delete_acls([exactly(b) for b in stale], request_timeout=60), "deleting ACLs"
                )
        self._delete_topics(orphans)
        return orphans

    def reconcile_sync(self, known: Sequence[consumers.Consumer]) -> tuple[int, int]:
        """Create whatever topic or ACL of these consumers is missing (registered before the broker
        lost its data, or under the single-topic layout of old); returns (topics, ACLs) created."""
        existing = set(self._admin.list_topics(timeout=30).topics)
        missing = [t for t in self._new_topics(known) if t.topic not in existing]
        self._create_topics(missing)
        if not self._acls:
            return len(missing), 0
        try:
            listed = self._admin.describe_acls(every_acl(), request_timeout=60).result(60)
        except KafkaException as exc:
            raise refused(exc, self._principal, "listing ACLs") from exc
        granted = {acl_key(b) for b in listed}
        wanted = self._cluster_acls(known)
        absent = [acl for acl in wanted if acl_key(acl) not in granted]
        if absent:
            self._wait(self._admin.create_acls(absent, request_timeout=60), "creating ACL")
        return len(missing), len(absent)

    def grant_sync(self, acls: Sequence[AclBinding]) -> None:
        """Grant these ACLs (a benchmark's shared principal, see `fleet_acls`)."""
        if acls:
            self._wait(self._admin.create_acls(list(acls), request_timeout=60), "creating ACL")

    def acls_of_sync(self, principal: str) -> list[AclBinding]:
        """Every ACL that names ``principal``."""
        try:
            return list(self._admin.describe_acls(every_acl(principal), request_timeout=60).result(60))
        except KafkaException as exc:
            raise refused(exc, self._principal, "listing ACLs") from exc

    async def provision(self, made: Sequence[consumers.Consumer]) -> None:
        await asyncio.to_thread(self.provision_sync, made)

    async def deprovision(self, gone: Sequence[consumers.Consumer]) -> None:
        await asyncio.to_thread(self.deprovision_sync, gone)

    async def release_orphans(self, registered: set[int]) -> list[str]:
        return await asyncio.to_thread(self.release_orphans_sync, registered)

    async def reconcile(self, known: Sequence[consumers.Consumer]) -> tuple[int, int]:
        return await asyncio.to_thread(self.reconcile_sync, known)


def exactly(acl: AclBinding) -> AclBindingFilter:
    """A filter matching ``acl`` and nothing else."""
    return AclBindingFilter(
        acl.restype,
        acl.name,
        acl.resource_pattern_type,
        acl.principal,
        acl.host,
        acl.operation,
        acl.permission_type,
    )
