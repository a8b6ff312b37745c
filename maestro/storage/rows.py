"""Table rows <-> `maestro.api` types: the column lists the queries select and their decoding."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from maestro.api import bundles, consumers

CONSUMER_COLUMNS = "name, labels, spec_topic, spec_partition, created_at, placement_slot, status_topic"

RESOURCE_COLUMNS = (
    "id, consumer, source, version, spec, metadata, created_at, updated_at, deleted_at, "
    "status, status_version, status_sequence, status_hash, status_rev"
)

# A status change's row: its readers (the status watch, sources' subscriptions) stream statuses,
# so the spec — most of the row, decoded for nothing — stays in the table.
STATUS_CHANGE_COLUMNS = RESOURCE_COLUMNS.replace("spec,", "NULL::json AS spec,")


# For listing: the JSON documents as text, passed through to the wire unparsed, and the id as text
# (aliased: ORDER BY id must stay the uuid column, in its index's order).
RAW_RESOURCE_COLUMNS = (
    "id::text AS id_text, consumer, source, version, spec::text, metadata::text, status::text, "
    "status_version, status_sequence, status_hash, deleted_at, created_at, updated_at"
)


def raw_resource_columns(*, with_spec: bool = True, with_status: bool = True) -> str:
    """``RAW_RESOURCE_COLUMNS``, with NULL for the spec or the status a reader does not want: specs
    are most of a list's bytes, and statuses most of the rest."""
    columns = RAW_RESOURCE_COLUMNS
    if not with_spec:
        columns = columns.replace("spec::text", "NULL::text AS spec")
    if not with_status:
        columns = columns.replace("status::text", "NULL::text AS status")
    return columns


# The same shape from resource_tombstones (no spec, no created/updated times).
TOMBSTONE_COLUMNS = (
    "id, consumer, source, version, NULL::json AS spec, metadata, NULL::timestamptz, NULL::timestamptz, "
    "deleted_at, status, status_version, status_sequence, status_hash, status_rev"
)


def consumer(row: tuple[Any, ...]) -> consumers.Consumer:
    name, labels, topic, partition, created_at, slot, status_topic = row
    return consumers.Consumer(
        name=name,
        labels=labels,
        placement=consumers.Placement(topic, partition),
        created_at=created_at,
        slot=slot,
        status_topic=status_topic,
    )


def spec_json(bundle: bundles.ResourceBundle) -> dict[str, Any]:
    return bundle.spec.to_json()


def bundle(row: tuple[Any, ...]) -> bundles.ResourceBundle:
    rid, consumer_name, source, version, spec, metadata, created_at, updated_at, deleted_at = row[:9]
    spec = spec or {}
    return bundles.ResourceBundle(
        id=rid if isinstance(rid, uuid.UUID) else uuid.UUID(str(rid)),
        consumer=consumer_name,
        source=source,
        version=version,
        manifests=spec.get("manifests") or [],
        delete_option=spec.get("deleteOption"),
        manifest_configs=spec.get("manifestConfigs") or [],
        executer=spec.get("executer"),
        metadata=metadata or {},
        created_at=created_at,
        updated_at=updated_at,
        deleted_at=deleted_at,
    )


def record(row: tuple[Any, ...]) -> bundles.BundleRecord:
    status_json, status_version, status_sequence, status_hash, status_rev = row[9:14]
    status = None
    if status_json is not None:
        status = bundles.BundleStatus(
            conditions=status_json.get("conditions") or [],
            resource_status=status_json.get("resourceStatus") or [],
            sequence_id=status_sequence or 0,
        )
    return bundles.BundleRecord(
        bundle=bundle(row),
        status=status,
        status_version=status_version or 0,
        status_hash=status_hash or "",
        status_rev=status_rev or 0,
    )


def raw_record(row: tuple[Any, ...]) -> bundles.RawRecord:
    rid, consumer_name, source, version, spec, metadata, status, status_version, sequence, digest = row[:10]
    deleted_at, created_at, updated_at = row[10:13]
    return bundles.RawRecord(
        id=rid,
        consumer=consumer_name,
        source=source,
        version=version,
        spec=spec.encode() if spec is not None else b"",
        metadata=(metadata or "{}").encode(),
        status=status.encode() if status else b"",
        status_version=status_version or 0,
        status_sequence=sequence or 0,
        status_hash=digest or "",
        deleted_at_us=_epoch_us(deleted_at),
        created_at_us=_epoch_us(created_at),
        updated_at_us=_epoch_us(updated_at),
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _epoch_us(value: datetime | None) -> int | None:
    # A tenth of the cost of calendar.timegm, which showed in list profiles.
    return None if value is None else (value - _EPOCH) // _MICROSECOND
