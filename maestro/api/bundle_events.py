"""Manifest-bundle CloudEvents: built from and parsed into `bundles` types.

One codec for every side, so they cannot drift: the server parses sources' spec requests and
agents' status reports and resync requests, and builds the spec events the outbox carries to
agents and the status events it streams to sources; the agent parses spec events and builds
status reports and its resync request. The transport (gRPC or Kafka) only moves `CloudEvent`s.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from maestro.api import bundles, consumers, errors, events, lifecycle, validation

_INT64_MAX = (1 << 63) - 1


def event_type(event: events.CloudEvent) -> events.EventType:
    return events.EventType.parse(validation.check_text(event.type, "type"))


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def _json(value: Any) -> bytes:
    return orjson.dumps(value)


def _new(
    source: str, kind: events.EventType, now: datetime | None, **extensions: events.ExtensionValue
) -> events.CloudEvent:
    return events.CloudEvent(
        id=events.new_id(),
        source=source,
        type=str(kind),
        time=_now(now),
        extensions={k: v for k, v in extensions.items() if v != ""},
        data_content_type=events.JSON_CONTENT_TYPE,
    )


def _bounded(value: int, name: str) -> int:
    if not 0 <= value <= _INT64_MAX:
        raise errors.InvalidArgument(name, f"{value} is outside 0..2^63-1")
    return value


def _metadata(event: events.CloudEvent) -> bundles.JsonObject:
    raw = event.extensions.get(events.METADATA)
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str | bytes):
        try:
            meta = orjson.loads(raw)
        except orjson.JSONDecodeError:
            meta = None
        if isinstance(meta, dict):
            validation.check_metadata(meta, raw)
            return meta
    raise errors.InvalidArgument(events.METADATA, "must be the work's ObjectMeta as a JSON object string")


def _expect(kind: events.EventType, sub: events.SubResource, *actions: events.Action) -> None:
    if kind.sub_resource is not sub or kind.action not in actions:
        wanted = ", ".join(f"{sub}.{a}" for a in actions)
        raise errors.InvalidArgument(
            "type", f"{kind.sub_resource}.{kind.action} is not expected here", f"send one of {wanted}"
        )


# Source -> server: create, update and delete requests.

_SPEC_ACTIONS = {
    events.Action.CREATE_REQUEST: bundles.SpecAction.CREATE,
    events.Action.UPDATE_REQUEST: bundles.SpecAction.UPDATE,
    events.Action.DELETE_REQUEST: bundles.SpecAction.DELETE,
}


def parse_spec_request(
    event: events.CloudEvent, *, max_bytes: int = validation.DEFAULT_MAX_BUNDLE_BYTES
) -> bundles.SpecRequest:
    validation.check_event(event)
    kind = event_type(event)
    _expect(kind, events.SubResource.SPEC, *_SPEC_ACTIONS)
    action = _SPEC_ACTIONS[kind.action]
    if not event.source:
        raise errors.InvalidArgument("source", "is empty", "set the event source to the source's id")
    spec = None
    if action is not bundles.SpecAction.DELETE:
        spec = validation.parse_manifest_bundle(event.data, max_bytes=max_bytes)
    return bundles.SpecRequest(
        action=action,
        resource_id=events.get_uuid(event, events.RESOURCE_ID),
        consumer=events.get_str(event, events.CLUSTER_NAME),
        source=event.source,
        version=_bounded(
            events.get_int(event, events.RESOURCE_VERSION, required=False), events.RESOURCE_VERSION
        ),
        spec=spec,
        metadata=_metadata(event),
    )


def spec_request_event(request: bundles.SpecRequest, *, now: datetime | None = None) -> events.CloudEvent:
    """What a source client sends (used by fleetplane's own source clients and tests)."""
    action = {v: k for k, v in _SPEC_ACTIONS.items()}[request.action]
    event = _new(
        request.source,
        events.EventType(events.SubResource.SPEC, action),
        now,
        resourceid=str(request.resource_id),
        resourceversion=request.version,
        clustername=request.consumer,
        metadata=_json(request.metadata).decode() if request.metadata else "",
    )
    if request.action is bundles.SpecAction.DELETE:
        return dataclasses.replace(
            event,
            extensions={**event.extensions, events.DELETION_TIMESTAMP: _now(now)},
            data_content_type=None,
        )
    assert request.spec is not None
    return dataclasses.replace(event, data=_json(request.spec.to_json()))


# Server -> agent: spec events (from the outbox) and resync answers.


def spec_event(
    bundle: bundles.ResourceBundle, action: events.Action, *, now: datetime | None = None
) -> events.CloudEvent:
    """The event telling the agent to apply (or, for a deleting bundle, remove) a bundle.

    The event source is the bundle's source, which the agent echoes back as `originalsource`.
    """
    event = _new(
        bundle.source,
        events.EventType(events.SubResource.SPEC, action),
        now,
        resourceid=str(bundle.id),
        resourceversion=bundle.version,
        clustername=bundle.consumer,
        metadata=_json(bundle.metadata).decode() if bundle.metadata else "",
    )
    if bundle.deleted_at is not None:
        return dataclasses.replace(
            event,
            extensions={**event.extensions, events.DELETION_TIMESTAMP: bundle.deleted_at},
            data_content_type=None,
        )
    return dataclasses.replace(event, data=_json(bundle.spec.to_json()))


def delete_unknown_event(
    resource_id: uuid.UUID, consumer: str, version: int, *, source: str, now: datetime | None = None
) -> events.CloudEvent:
    """A delete for a bundle the agent holds but the server no longer knows (resync answer)."""
    stamp = _now(now)
    return _new(
        source,
        events.EventType(events.SubResource.SPEC, events.Action.RESYNC_RESPONSE),
        stamp,
        resourceid=str(resource_id),
        resourceversion=version,
        clustername=consumer,
        deletiontimestamp=stamp,
    )


def parse_spec_event(event: events.CloudEvent) -> bundles.ResourceBundle:
    """The agent's view of a spec event: the bundle to apply, or to remove when `deleting`."""
    kind = event_type(event)
    _expect(
        kind,
        events.SubResource.SPEC,
        events.Action.CREATE_REQUEST,
        events.Action.UPDATE_REQUEST,
        events.Action.DELETE_REQUEST,
        events.Action.RESYNC_RESPONSE,
    )
    deleted_at = events.get_time(event, events.DELETION_TIMESTAMP, required=False)
    spec = bundles.ManifestBundle(manifests=[])
    if deleted_at is None:
        # The server validated the bundle already; an unbounded limit avoids refusing what it let in.
        spec = validation.parse_manifest_bundle(event.data, max_bytes=1 << 62)
    return bundles.ResourceBundle(
        id=events.get_uuid(event, events.RESOURCE_ID),
        consumer=events.get_str(event, events.CLUSTER_NAME),
        source=event.source,
        version=_bounded(events.get_int(event, events.RESOURCE_VERSION), events.RESOURCE_VERSION),
        manifests=spec.manifests,
        delete_option=spec.delete_option,
        manifest_configs=spec.manifest_configs,
        executer=spec.executer,
        metadata=_metadata(event),
        deleted_at=deleted_at,
    )


# Agent -> server: status reports and the spec resync request.


def status_report_event(
    report: bundles.StatusReport,
    *,
    source: str,
    now: datetime | None = None,
    action: events.Action = events.Action.UPDATE_REQUEST,
) -> events.CloudEvent:
    """What an agent sends for one bundle's status; `source` is the agent's own id."""
    event = _new(
        source,
        events.EventType(events.SubResource.STATUS, action),
        now,
        resourceid=str(report.resource_id),
        resourceversion=report.resource_version,
        clustername=report.consumer,
        originalsource=report.original_source,
        # As upstream sends its sequence ids: strings, as they do not fit an int32 attribute.
        sequenceid=str(report.status.sequence_id),
        statushash=report.status_hash,
    )
    return dataclasses.replace(event, data=_json(report.status.to_json()))


def parse_status_report(
    event: events.CloudEvent,
    *,
    now_ns: int | None = None,
    sequence_ahead: timedelta = lifecycle.DEFAULT_SEQUENCE_AHEAD,
) -> bundles.StatusReport:
    """An agent's status report; its sequence id may be at most `sequence_ahead` past `now_ns`
    (the server's clock, read here when not given): see `lifecycle.check_sequence`."""
    validation.check_event(event)
    kind = event_type(event)
    _expect(kind, events.SubResource.STATUS, events.Action.UPDATE_REQUEST, events.Action.RESYNC_RESPONSE)
    sequence = _bounded(events.get_int(event, events.SEQUENCE_ID), events.SEQUENCE_ID)
    lifecycle.check_sequence(
        sequence, now_ns=time.time_ns() if now_ns is None else now_ns, ahead=sequence_ahead
    )
    return bundles.StatusReport(
        resource_id=events.get_uuid(event, events.RESOURCE_ID),
        consumer=consumers.validate_name(events.get_str(event, events.CLUSTER_NAME), events.CLUSTER_NAME),
        resource_version=_bounded(events.get_int(event, events.RESOURCE_VERSION), events.RESOURCE_VERSION),
        status=validation.parse_bundle_status(event.data, sequence_id=sequence),
        original_source=events.get_str(event, events.ORIGINAL_SOURCE, required=False),
        status_hash=events.get_str(event, events.STATUS_HASH, required=False),
    )


@dataclasses.dataclass(frozen=True, slots=True)
class AgentResyncRequest:
    consumer: str
    versions: dict[uuid.UUID, int]


def spec_resync_request_event(
    consumer: str, versions: Mapping[uuid.UUID, int], *, source: str, now: datetime | None = None
) -> events.CloudEvent:
    event = _new(
        source,
        events.EventType(events.SubResource.SPEC, events.Action.RESYNC_REQUEST),
        now,
        clustername=consumer,
    )
    body = {"resourceVersions": [{"resourceID": str(k), "resourceVersion": v} for k, v in versions.items()]}
    return dataclasses.replace(event, data=_json(body))


def parse_spec_resync_request(event: events.CloudEvent) -> AgentResyncRequest:
    validation.check_event(event)
    _expect(event_type(event), events.SubResource.SPEC, events.Action.RESYNC_REQUEST)
    body = _resync_body(event, "resourceVersions")
    versions: dict[uuid.UUID, int] = {}
    for i, item in enumerate(body):
        path = f"data.resourceVersions[{i}]"
        rid = _item_uuid(item, path)
        version = item.get("resourceVersion", 0)
        if isinstance(version, str) and version.isdigit():
            version = int(version)
        if not isinstance(version, int) or isinstance(version, bool) or not 0 <= version <= _INT64_MAX:
            raise errors.InvalidArgument(f"{path}.resourceVersion", f"{version!r} is not a version number")
        versions[rid] = version
    # The name is looked up in storage: a valid one cannot fail there.
    consumer = consumers.validate_name(events.get_str(event, events.CLUSTER_NAME), events.CLUSTER_NAME)
    return AgentResyncRequest(consumer=consumer, versions=versions)


# Server -> source: statuses; source -> server: the status resync request.


def status_event(
    record: bundles.BundleRecord,
    *,
    source: str,
    now: datetime | None = None,
    action: events.Action = events.Action.UPDATE_REQUEST,
) -> events.CloudEvent:
    """A stored status as the server streams it to the bundle's source; `source` is the server's id."""
    if record.status is None:
        raise ValueError(f"resource bundle {record.bundle.id} has no status to send")
    bundle = record.bundle
    event = _new(
        source,
        events.EventType(events.SubResource.STATUS, action),
        now,
        resourceid=str(bundle.id),
        resourceversion=record.status_version,
        clustername=bundle.consumer,
        originalsource=bundle.source,
        sequenceid=str(record.status.sequence_id),
        statushash=record.status_hash,
        metadata=_json(bundle.metadata).decode() if bundle.metadata else "",
    )
    return dataclasses.replace(event, data=_json(record.status.to_json()))


@dataclasses.dataclass(frozen=True, slots=True)
class SourceResyncRequest:
    source: str
    # Empty: the source holds nothing and wants every status.
    hashes: dict[uuid.UUID, str]


def status_resync_request_event(
    hashes: Mapping[uuid.UUID, str], *, source: str, now: datetime | None = None
) -> events.CloudEvent:
    event = _new(source, events.EventType(events.SubResource.STATUS, events.Action.RESYNC_REQUEST), now)
    body = {"statusHashes": [{"resourceID": str(k), "statusHash": v} for k, v in hashes.items()]}
    return dataclasses.replace(event, data=_json(body))


def parse_status_resync_request(event: events.CloudEvent) -> SourceResyncRequest:
    validation.check_event(event)
    _expect(event_type(event), events.SubResource.STATUS, events.Action.RESYNC_REQUEST)
    if not event.source:
        raise errors.InvalidArgument("source", "is empty", "set the event source to the source's id")
    hashes: dict[uuid.UUID, str] = {}
    for i, item in enumerate(_resync_body(event, "statusHashes")):
        path = f"data.statusHashes[{i}]"
        rid = _item_uuid(item, path)
        value = item.get("statusHash", "")
        if not isinstance(value, str):
            raise errors.InvalidArgument(f"{path}.statusHash", "must be a string")
        hashes[rid] = value
    return SourceResyncRequest(source=event.source, hashes=hashes)


def _resync_body(event: events.CloudEvent, key: str) -> list[dict[str, Any]]:
    if not event.data:
        return []
    body = validation.decode_json(event.data, "data")
    if not isinstance(body, dict):
        raise errors.InvalidArgument("data", "must be a JSON object", f'send {{"{key}": [...]}}')
    items = body.get(key) or []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise errors.InvalidArgument(f"data.{key}", "must be an array of objects")
    return items


def _item_uuid(item: dict[str, Any], path: str) -> uuid.UUID:
    raw = item.get("resourceID")
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise errors.InvalidArgument(f"{path}.resourceID", f"{raw!r} is not a UUID") from None
