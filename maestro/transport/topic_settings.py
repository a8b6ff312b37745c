"""How the server makes every spec and status topic: its replication, and the topic-level configs
it keeps them at (set when a topic is made, and set again on existing topics when they change).

Pure: what is wanted and what differs from what a broker holds. `admin.Topics` talks to Kafka.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping

from maestro.transport.client_config import max_message_bytes

MAX_MESSAGE_BYTES = "max.message.bytes"
MIN_INSYNC_REPLICAS = "min.insync.replicas"
#: Topic configs the server derives from its own settings: `--topic-config` may not name them.
DERIVED = {
    MAX_MESSAGE_BYTES: "it follows --bundle-limit",
    MIN_INSYNC_REPLICAS: "give --topic-min-insync-replicas",
}
#: What Kafka's topic config names look like (retention.ms, cleanup.policy, ...).
_CONFIG_NAME = re.compile(r"^[a-z][a-z0-9]*(\.[a-z0-9]+)+$")
#: A replication factor the broker fills in with its ``default.replication.factor`` (CreateTopics).
BROKER_DEFAULT = -1


class TopicSettingsError(ValueError):
    """A topic setting is malformed or contradicts another; the message names it and the fix."""


@dataclasses.dataclass(frozen=True)
class TopicSettings:
    """``replication_factor`` and ``min_insync_replicas`` None leave them to the brokers' defaults
    (``default.replication.factor``, ``min.insync.replicas``); ``configs`` are further topic
    configs (``retention.ms``...), set on every topic."""

    replication_factor: int | None = None
    min_insync_replicas: int | None = None
    configs: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        for flag, value in (
            ("--topic-replication-factor", self.replication_factor),
            ("--topic-min-insync-replicas", self.min_insync_replicas),
        ):
            if value is not None and value < 1:
                raise TopicSettingsError(f"{flag} must be at least 1, got {value}")
        rf, isr = self.replication_factor, self.min_insync_replicas
        if rf is not None and isr is not None and isr > rf:
            raise TopicSettingsError(
                f"--topic-min-insync-replicas {isr} exceeds --topic-replication-factor {rf}: no write "
                f"could ever be acknowledged; give at most {rf} (one less than the replicas, so that "
                "a broker may be lost without refusing writes)"
            )
        for name, text in self.configs.items():
            if name in DERIVED:
                raise TopicSettingsError(f"--topic-config {name}: {DERIVED[name]}")
            if not _CONFIG_NAME.match(name):
                raise TopicSettingsError(
                    f"--topic-config {name}={text}: not a Kafka topic config name (e.g. retention.ms)"
                )
            if not text:
                raise TopicSettingsError(f"--topic-config {name}: give a value, as {name}=VALUE")

    @classmethod
    def from_flags(
        cls, replication_factor: int | None, min_insync_replicas: int | None, pairs: Iterable[str]
    ) -> TopicSettings:
        """What ``--topic-replication-factor``, ``--topic-min-insync-replicas`` and the repeated
        ``--topic-config KEY=VALUE`` ask for."""
        configs: dict[str, str] = {}
        for pair in pairs:
            name, sep, value = pair.partition("=")
            if not sep:
                raise TopicSettingsError(
                    f"--topic-config {pair}: give KEY=VALUE, e.g. retention.ms=604800000"
                )
            name = name.strip()
            if name in configs:
                raise TopicSettingsError(f"--topic-config {name} is given twice: give it once")
            configs[name] = value.strip()
        return cls(replication_factor, min_insync_replicas, configs)

    @property
    def new_topic_replication(self) -> int:
        """The replication factor to create a topic with (`BROKER_DEFAULT` lets the broker choose)."""
        return self.replication_factor if self.replication_factor is not None else BROKER_DEFAULT

    def wanted(self, bundle_limit: int) -> dict[str, str]:
        """Every topic config the server keeps its topics at."""
        out = {MAX_MESSAGE_BYTES: str(max_message_bytes(bundle_limit))}
        if self.min_insync_replicas is not None:
            out[MIN_INSYNC_REPLICAS] = str(self.min_insync_replicas)
        return out | dict(self.configs)


#: The brokers' defaults for replication and nothing more: what a server started without flags asks.
BROKER_DEFAULTS = TopicSettings()


def drift(wanted: Mapping[str, str], held: Mapping[str, str | None]) -> dict[str, str]:
    """The wanted configs a topic does not hold as wanted (absent, or another value)."""
    return {name: value for name, value in wanted.items() if held.get(name) != value}
