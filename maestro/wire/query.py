"""fleetplane.maestro.v1 (the MaestroQuery service) messages <-> `maestro.api` types.

Called by the gRPC query service to answer requests, and by clients (the `fleetplane maestro`
CLI, the status aggregation controller) to read answers back into domain terms.
"""

from __future__ import annotations

import calendar
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
from google.protobuf import timestamp_pb2

from maestro.api import bundles, consumers, errors, queries
from maestro.wire import stubs

pb = stubs.query


def _timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    # Timestamp.FromDatetime is slow enough to show in list profiles; this is the same arithmetic.
    seconds = calendar.timegm(value.utctimetuple())
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=value.microsecond * 1000)


def _datetime(message: pb.Consumer | pb.ResourceBundle, field: str) -> datetime | None:
    if not message.HasField(field):  # type: ignore[arg-type]
        return None
    stamp: timestamp_pb2.Timestamp = getattr(message, field)
    return stamp.ToDatetime(tzinfo=UTC)


def consumer_to_pb(consumer: consumers.Consumer) -> pb.Consumer:
    placement = consumer.placement
    return pb.Consumer(
        name=consumer.name,
        labels=dict(consumer.labels),
        spec_topic=placement.topic if placement else "",
        spec_partition=placement.partition if placement else 0,
        created_at=_timestamp(consumer.created_at),
    )


def consumer_from_pb(message: pb.Consumer) -> consumers.Consumer:
    placement = None
    if message.spec_topic:
        placement = consumers.Placement(message.spec_topic, message.spec_partition)
    return consumers.Consumer(
        name=message.name,
        labels=dict(message.labels),
        placement=placement,
        created_at=_datetime(message, "created_at"),
    )


def _deletion_state(record: bundles.BundleRecord, deleted: bool) -> pb.DeletionState.ValueType:
    if deleted:
        return pb.DELETION_STATE_DELETED
    return pb.DELETION_STATE_DELETING if record.bundle.deleting else pb.DELETION_STATE_ACTIVE


def record_to_pb(record: bundles.BundleRecord) -> pb.ResourceBundle:
    bundle = record.bundle
    return pb.ResourceBundle(
        id=str(bundle.id),
        consumer=bundle.consumer,
        source=bundle.source,
        version=bundle.version,
        spec=orjson.dumps(bundle.spec.to_json()),
        metadata=orjson.dumps(bundle.metadata),
        status=orjson.dumps(record.status.to_json()) if record.status else b"",
        status_sequence=record.status.sequence_id if record.status else 0,
        status_hash=record.status_hash,
        status_version=record.status_version,
        deletion_state=_deletion_state(record, deleted=False),
        deleted_at=_timestamp(bundle.deleted_at),
        created_at=_timestamp(bundle.created_at),
        updated_at=_timestamp(bundle.updated_at),
    )


def add_raw_records(items: Any, records: Iterable[bundles.RawRecord]) -> None:
    """Append listed bundles to a response's repeated ``items`` field, built in place: messages
    built apart and handed over as ``items=[...]`` are copied one by one, which with the per-row
    datetime conversions was most of a 6,000-bundle list's time in the server."""
    add = items.add
    for record in records:
        message = add(
            id=record.id,
            consumer=record.consumer,
            source=record.source,
            version=record.version,
            spec=record.spec,
            metadata=record.metadata,
            status=record.status,
            status_sequence=record.status_sequence,
            status_hash=record.status_hash,
            status_version=record.status_version,
            deletion_state=(
                pb.DELETION_STATE_DELETING if record.deleted_at_us is not None else pb.DELETION_STATE_ACTIVE
            ),
        )
        if record.deleted_at_us is not None:
            _set_us(message.deleted_at, record.deleted_at_us)
        if record.created_at_us is not None:
            _set_us(message.created_at, record.created_at_us)
        if record.updated_at_us is not None:
            _set_us(message.updated_at, record.updated_at_us)


def _set_us(field: timestamp_pb2.Timestamp, micros: int) -> None:
    field.seconds, rest = divmod(micros, 1_000_000)
    field.nanos = rest * 1000


def record_from_pb(message: pb.ResourceBundle) -> bundles.BundleRecord:
    """The record a message holds (its status ``None`` if the message has none)."""
    spec = orjson.loads(message.spec) if message.spec else {}
    status = None
    if message.status:
        body = orjson.loads(message.status)
        status = bundles.BundleStatus(
            conditions=body.get("conditions") or [],
            resource_status=body.get("resourceStatus") or [],
            sequence_id=message.status_sequence,
        )
    bundle = bundles.ResourceBundle(
        id=uuid.UUID(message.id),
        consumer=message.consumer,
        source=message.source,
        version=message.version,
        manifests=spec.get("manifests") or [],
        delete_option=spec.get("deleteOption"),
        manifest_configs=spec.get("manifestConfigs") or [],
        executer=spec.get("executer"),
        metadata=orjson.loads(message.metadata) if message.metadata else {},
        deleted_at=_datetime(message, "deleted_at"),
        created_at=_datetime(message, "created_at"),
        updated_at=_datetime(message, "updated_at"),
    )
    return bundles.BundleRecord(
        bundle=bundle, status=status, status_version=message.status_version, status_hash=message.status_hash
    )


def status_change_to_pb(change: bundles.StatusChange) -> pb.StatusChange:
    record = change.record
    status = record.status
    return pb.StatusChange(
        resume_token=queries.resume_token(change.rev),
        resource_id=str(record.bundle.id),
        consumer=record.bundle.consumer,
        source=record.bundle.source,
        version=record.status_version,
        status=orjson.dumps(status.to_json()) if status else b"",
        status_sequence=status.sequence_id if status else 0,
        status_hash=record.status_hash,
        deletion_state=_deletion_state(record, change.deleted),
        metadata=orjson.dumps(record.bundle.metadata),
    )


def resource_filter(
    request: pb.ListResourceBundlesRequest | pb.CountResourceBundlesRequest | pb.WatchStatusRequest,
) -> queries.ResourceFilter:
    labels = dict(request.label_selector) if not isinstance(request, pb.WatchStatusRequest) else {}
    return queries.ResourceFilter(consumer=request.consumer, source=request.source, labels=labels)


def resource_filter_fields(where: queries.ResourceFilter) -> dict[str, Any]:
    """A filter as the fields a list or count request carries (the inverse of ``resource_filter``)."""
    return {"consumer": where.consumer, "source": where.source, "label_selector": dict(where.labels)}


def consumer_filter(request: pb.ListConsumersRequest) -> queries.ConsumerFilter:
    return queries.ConsumerFilter(labels=dict(request.label_selector))


def resource_id(text: str, field: str = "id") -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise errors.InvalidArgument(field, f"{text!r} is not a UUID", "send a resource bundle id") from None
