"""Resource bundles (upstream's ManifestWorks inside Maestro): spec, status and requests.

Built by `validation` and `bundle_events` from what sources and agents send, planned by
`lifecycle`, stored by `maestro.storage`, shown by the query service.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ManifestBundle:
    """The spec payload of a bundle, as upstream's `ManifestBundle` JSON carries it."""

    manifests: list[JsonObject]
    delete_option: JsonObject | None = None
    manifest_configs: list[JsonObject] = field(default_factory=list)
    # Upstream spells it "executer"; kept so a bundle round-trips unchanged.
    executer: JsonObject | None = None

    def to_json(self) -> JsonObject:
        out: JsonObject = {"manifests": self.manifests}
        if self.delete_option is not None:
            out["deleteOption"] = self.delete_option
        if self.manifest_configs:
            out["manifestConfigs"] = self.manifest_configs
        if self.executer is not None:
            out["executer"] = self.executer
        return out


@dataclass(frozen=True, slots=True)
class ResourceBundle:
    """One bundle as stored: its spec at `version` and who it belongs to."""

    id: uuid.UUID
    consumer: str
    source: str
    version: int
    manifests: list[JsonObject]
    delete_option: JsonObject | None = None
    manifest_configs: list[JsonObject] = field(default_factory=list)
    metadata: JsonObject = field(default_factory=dict)
    executer: JsonObject | None = None
    deleted_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def spec(self) -> ManifestBundle:
        return ManifestBundle(
            manifests=self.manifests,
            delete_option=self.delete_option,
            manifest_configs=self.manifest_configs,
            executer=self.executer,
        )

    @property
    def deleting(self) -> bool:
        return self.deleted_at is not None

    @property
    def labels(self) -> dict[str, str]:
        labels = self.metadata.get("labels")
        return dict(labels) if isinstance(labels, dict) else {}


@dataclass(frozen=True, slots=True)
class BundleStatus:
    """What an agent reported: upstream's `ManifestBundleStatus` plus its sequence id."""

    conditions: list[JsonObject] = field(default_factory=list)
    resource_status: list[JsonObject] = field(default_factory=list)
    # Sent as a string (it does not fit a ce_integer), kept as an int: an agent's clock in
    # nanoseconds (see lifecycle.check_sequence).
    sequence_id: int = 0

    def to_json(self) -> JsonObject:
        return {"conditions": self.conditions, "resourceStatus": self.resource_status}


@dataclass(frozen=True, slots=True)
class BundleRecord:
    """A bundle with its latest accepted status, as storage returns it."""

    bundle: ResourceBundle
    status: BundleStatus | None = None
    # The spec version the stored status was reported for.
    status_version: int = 0
    status_hash: str = ""
    # Global, increasing on every stored status change: the watch resume position.
    status_rev: int = 0


class SpecAction(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class SpecRequest:
    """A source's create/update/delete of a bundle, decoded from its spec event."""

    action: SpecAction
    resource_id: uuid.UUID
    consumer: str
    source: str
    # The version the source last saw; 0 means "whatever is current".
    version: int = 0
    spec: ManifestBundle | None = None
    metadata: JsonObject = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StatusReport:
    """An agent's status for one bundle, decoded from its status event."""

    resource_id: uuid.UUID
    consumer: str
    resource_version: int
    status: BundleStatus
    original_source: str = ""
    # The hash the agent sent, if any; storage keeps its own (statushash.status_hash).
    status_hash: str = ""


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One stored status change, as the status watch streams it."""

    # The global status revision; the watch resumes after it.
    rev: int
    record: BundleRecord
    # The bundle is gone: the agent reported Deleted (or its deletion grace ran out).
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A stored bundle as listing passes it through: the JSON documents as bytes, unparsed; the id
    in its text form; times in microseconds since the epoch (what the wire's Timestamp takes)."""

    id: str
    consumer: str
    source: str
    version: int
    spec: bytes
    metadata: bytes
    status: bytes
    status_version: int
    status_sequence: int
    status_hash: str
    deleted_at_us: int | None = None
    created_at_us: int | None = None
    updated_at_us: int | None = None
