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

from maestro.api import bundles, consumers, errors, listing, queries, revocations
from maestro.wire import stubs

pb = stubs.query


def _timestamp(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    # Timestamp.FromDatetime is slow enough to show in list profiles; this is the same arithmetic.
    seconds = calendar.timegm(value.utctimetuple())
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=value.microsecond * 1000)


def _datetime(message: pb.Consumer, field: str) -> datetime | None:
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
        placement_slot=consumer.slot,
        status_topic=consumer.status_topic,
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
        slot=message.placement_slot if message.HasField("placement_slot") else None,
        status_topic=message.status_topic,
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


_DELETION_STATES = {
    pb.DELETION_STATE_UNSPECIFIED: listing.DeletionState.UNSPECIFIED,
    pb.DELETION_STATE_ACTIVE: listing.DeletionState.ACTIVE,
    pb.DELETION_STATE_DELETING: listing.DeletionState.DELETING,
    pb.DELETION_STATE_DELETED: listing.DeletionState.DELETED,
}


def _us(stamp: timestamp_pb2.Timestamp) -> int | None:
    # An unset Timestamp reads as zero, which no stored time is: cheaper than HasField for each of
    # a listing's 150,000 bundles.
    return (stamp.seconds * 1_000_000 + stamp.nanos // 1000) or None


def summary_from_pb(message: pb.ResourceBundle) -> listing.BundleSummary:
    # Positional, in the fields' order: a status list converts 150,000 of these a minute, and
    # keyword arguments cost a third of each conversion.
    deletion = _DELETION_STATES.get(message.deletion_state, listing.DeletionState.UNSPECIFIED)
    return listing.BundleSummary(
        message.id,
        message.consumer,
        message.source,
        message.version,
        deletion,
        message.spec,
        message.metadata,
        message.status,
        message.status_sequence,
        message.status_hash,
        message.status_version,
        # deleted_at is set while deleting, and only then
        _us(message.deleted_at) if deletion is listing.DeletionState.DELETING else None,
        _us(message.created_at),
        _us(message.updated_at),
    )


def page_from_pb(message: pb.ListResourceBundlesResponse) -> listing.BundlePage:
    return listing.BundlePage(
        items=[summary_from_pb(item) for item in message.items],
        next_page_token=message.next_page_token,
        watch_resume_token=message.watch_resume_token,
    )


def status_update_from_pb(message: pb.StatusChange) -> listing.StatusUpdate:
    return listing.StatusUpdate(
        resource_id=message.resource_id,
        consumer=message.consumer,
        source=message.source,
        version=message.version,
        deletion=_DELETION_STATES.get(message.deletion_state, listing.DeletionState.UNSPECIFIED),
        metadata_json=message.metadata,
        status_json=message.status,
        status_sequence=message.status_sequence,
        status_hash=message.status_hash,
        resume_token=message.resume_token,
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
    return queries.check_resource_filter(
        queries.ResourceFilter(consumer=request.consumer, source=request.source, labels=labels)
    )


def resource_filter_fields(where: queries.ResourceFilter) -> dict[str, Any]:
    """A filter as the fields a list or count request carries (the inverse of ``resource_filter``)."""
    return {"consumer": where.consumer, "source": where.source, "label_selector": dict(where.labels)}


def consumer_filter(request: pb.ListConsumersRequest) -> queries.ConsumerFilter:
    return queries.check_consumer_filter(queries.ConsumerFilter(labels=dict(request.label_selector)))


def resource_id(text: str, field: str = "id") -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise errors.InvalidArgument(field, f"{text!r} is not a UUID", "send a resource bundle id") from None


def revocation_to_pb(revoked: revocations.Revocation) -> pb.RevokedCertificate:
    return pb.RevokedCertificate(
        serial=revocations.serial_text(revoked.serial),
        reason=revoked.reason,
        revoked_by=revoked.revoked_by,
        revoked_at=_timestamp(revoked.revoked_at),
    )


def revocation_from_pb(message: pb.RevokedCertificate) -> revocations.Revocation:
    return revocations.Revocation(
        serial=int(message.serial, 16),
        reason=message.reason,
        revoked_by=message.revoked_by,
        revoked_at=message.revoked_at.ToDatetime(tzinfo=UTC) if message.HasField("revoked_at") else None,
    )
