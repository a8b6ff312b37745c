"""Bundles as a source reads them back: listed pages, summaries and watched status changes.

A hub controller lists every work of its source each minute (150,000 at fleet scale) and reads
few of them whole, so a summary keeps its JSON documents as the bytes the server sent; they are
parsed only when asked for (``metadata()``, ``status()``, ``record()``). Summaries and status
updates are named tuples: as cheap to build as a plain object, and immutable, where a frozen
dataclass of as many fields took longer to build than the rest of a listed bundle's client-side
handling together.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson

from maestro.api import bundles

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class DeletionState(enum.Enum):
    #: from a server that does not say
    UNSPECIFIED = "unspecified"
    #: live: not asked to be deleted
    ACTIVE = "active"
    #: soft-deleted: the agent has been told to remove what it applied
    DELETING = "deleting"
    #: gone: the agent reported Deleted (or the orphan grace ran out); only seen in a status change
    DELETED = "deleted"


def _object(raw: bytes) -> dict[str, Any]:
    return orjson.loads(raw) if raw else {}


def _datetime(micros: int | None) -> datetime | None:
    if micros is None:
        return None
    return _EPOCH + timedelta(microseconds=micros)


class BundleSummary(NamedTuple):
    """One bundle as listed: its JSON documents as bytes (spec or status empty when the list left
    them out: its status sequence, hash and version are always there), times in microseconds
    since the epoch."""

    id: str
    consumer: str
    source: str
    version: int
    deletion: DeletionState
    spec_json: bytes
    metadata_json: bytes
    status_json: bytes
    status_sequence: int
    status_hash: str
    status_version: int
    deleted_at_us: int | None = None
    created_at_us: int | None = None
    updated_at_us: int | None = None

    def metadata(self) -> dict[str, Any]:
        return _object(self.metadata_json)

    def spec(self) -> dict[str, Any]:
        return _object(self.spec_json)

    def status(self) -> dict[str, Any] | None:
        """The status JSON (``None`` if there is none, or the list left it out)."""
        return _object(self.status_json) if self.status_json else None

    def record(self) -> bundles.BundleRecord:
        """The bundle decoded whole (its status ``None`` if the summary has none)."""
        spec = self.spec()
        body = self.status()
        status = None
        if body is not None:
            status = bundles.BundleStatus(
                conditions=body.get("conditions") or [],
                resource_status=body.get("resourceStatus") or [],
                sequence_id=self.status_sequence,
            )
        bundle = bundles.ResourceBundle(
            id=uuid.UUID(self.id),
            consumer=self.consumer,
            source=self.source,
            version=self.version,
            manifests=spec.get("manifests") or [],
            delete_option=spec.get("deleteOption"),
            manifest_configs=spec.get("manifestConfigs") or [],
            executer=spec.get("executer"),
            metadata=self.metadata(),
            deleted_at=_datetime(self.deleted_at_us),
            created_at=_datetime(self.created_at_us),
            updated_at=_datetime(self.updated_at_us),
        )
        return bundles.BundleRecord(
            bundle=bundle, status=status, status_version=self.status_version, status_hash=self.status_hash
        )


@dataclass(frozen=True, slots=True)
class BundlePage:
    items: Sequence[BundleSummary]
    #: empty on the last page
    next_page_token: str
    #: a watch resume token taken with this page: list every page, then watch from the first
    #: page's token, and no status change falls between the list and the watch
    watch_resume_token: str


class StatusUpdate(NamedTuple):
    """One status change as the watch delivers it, its JSON documents as bytes."""

    resource_id: str
    consumer: str
    source: str
    #: the spec version the status was reported for
    version: int
    deletion: DeletionState
    metadata_json: bytes
    status_json: bytes
    status_sequence: int
    status_hash: str
    #: reconnect with this token to continue after this change
    resume_token: str

    def metadata(self) -> dict[str, Any]:
        return _object(self.metadata_json)

    def status(self) -> dict[str, Any] | None:
        return _object(self.status_json) if self.status_json else None
