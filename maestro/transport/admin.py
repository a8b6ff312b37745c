"""Topic and ACL management: each consumer's topics and its cluster's ACLs, made and removed as
consumers come and go. The admin client's calls block, so the asynchronous ones go to a thread."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from maestro.api import consumers
from maestro.transport import layout
from maestro.transport.acls import acl_key, cluster_acls, every_acl
from maestro.transport.client_config import base_config
from maestro.transport.connection import KafkaSettings
from maestro.transport.errors import PublishError, kafka_error, refused
from maestro.transport.topic_settings import BROKER_DEFAULTS, TopicSettings, drift
from trust.identity import cluster_incarnation

log = logging.getLogger(__name__)


class Topics:
    """Each consumer's topics and its cluster's ACLs: made when it is registered, removed when it
    is deleted, repaired when the server starts. Needs a principal that may create topics and
    ACLs (the Maestro server's, a super user)."""

    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        bundle_limit: int = 1024 * 1024,
        names: layout.Layout = layout.DEFAULT,
        settings: TopicSettings = BROKER_DEFAULTS,
    ) -> None:
        self._principal = kafka.principal
        self._form = kafka.principals
        self._admin = AdminClient(base_config(kafka))
        self._names = names
        # A plaintext broker has no authorizer to hold ACLs (and refuses them).
        self._acls = kafka.is_secure
        self._settings = settings
        self._config = settings.wanted(bundle_limit)

    def _cluster_acls(self, of: Sequence[consumers.Consumer]) -> list[AclBinding]:
        return [acl for consumer in of for acl in cluster_acls(consumer, self._names, self._form)]

    def _new_topics(self, made: Sequence[consumers.Consumer]) -> list[NewTopic]:
        replication = self._settings.new_topic_replication
        return [
            NewTopic(topic, 1, replication, config=self._config)
            for consumer in made
            for topic in topics_of(consumer)
        ]

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
        self._delete_topics([t for consumer in gone for t in topics_of(consumer)])
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

    def align_sync(self, known: Sequence[consumers.Consumer], batch: int = 200) -> Alignment:
        """Set the configs of these consumers' topics that differ from the wanted ones (a limit
        changed since they were made), with incremental alterations that leave every other config
        of theirs alone; and list those with fewer replicas than wanted, which only a partition
        reassignment changes. Run it after `reconcile_sync` (the topics exist)."""
        names = [t for consumer in known for t in topics_of(consumer)]
        altered: list[str] = []
        for start in range(0, len(names), batch):
            chunk = names[start : start + batch]
            held = self._configs_of(chunk)
            changes = {t: d for t in chunk if (d := drift(self._config, held.get(t, {})))}
            if changes:
                self._wait(
                    self._admin.incremental_alter_configs(
                        [
                            ConfigResource(
                                ResourceType.TOPIC,
                                topic,
                                incremental_configs=[
                                    ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                                    for k, v in sorted(d.items())
                                ],
                            )
                            for topic, d in changes.items()
                        ],
                        request_timeout=60,
                    ),
                    "setting the configs of topic",
                )
                altered += changes
        wanted = self._settings.replication_factor
        short: list[str] = []
        if wanted is not None and names:
            metadata = self._admin.list_topics(timeout=30).topics
            short = sorted(
                t
                for t in names
                if t in metadata and any(len(p.replicas) < wanted for p in metadata[t].partitions.values())
            )
        return Alignment(altered, short)

    def _configs_of(self, topics: Sequence[str]) -> dict[str, dict[str, str | None]]:
        """Each topic's configs as the broker holds them (name -> value)."""
        futures = self._admin.describe_configs(
            [ConfigResource(ResourceType.TOPIC, t) for t in topics], request_timeout=60
        )
        out: dict[str, dict[str, str | None]] = {}
        for resource, fut in futures.items():
            try:
                entries = fut.result(60)
            except KafkaException as exc:
                raise refused(exc, self._principal, f"reading the configs of topic {resource.name}") from exc
            out[resource.name] = {name: entry.value for name, entry in entries.items()}
        return out

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

    async def align(self, known: Sequence[consumers.Consumer]) -> Alignment:
        return await asyncio.to_thread(self.align_sync, known)


@dataclasses.dataclass(frozen=True)
class Alignment:
    """What `Topics.align_sync` did and found."""

    #: topics whose configs were set to the wanted values
    altered: list[str]
    #: topics with a partition of fewer replicas than the replication factor wanted
    under_replicated: list[str]


def topics_of(consumer: consumers.Consumer) -> tuple[str, str]:
    """The consumer's spec and status topics."""
    return consumer.spec_placement.topic, consumer.status_topic


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
