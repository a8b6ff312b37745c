"""The transport-neutral CloudEvent model, event types and typed extension access.

`maestro.wire` converts it to and from the gRPC protobuf (`ce-` attribute keys), the Kafka
transport to and from binary-mode messages (`ce_` headers); storage keeps it in the outbox in its
JSON (structured) form. `bundle_events` builds and parses the manifest-bundle events on top of it.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from maestro.api import errors

SPEC_VERSION = "1.0"
JSON_CONTENT_TYPE = "application/json"
MANIFEST_BUNDLES = "io.open-cluster-management.works.v1alpha1.manifestbundles"
HEARTBEAT_TYPE = "io.open-cluster-management.cloudevents.heartbeat"

# Extension names (the wire adds its own prefix: "ce-" on gRPC, "ce_" on Kafka).
RESOURCE_ID = "resourceid"
RESOURCE_VERSION = "resourceversion"
CLUSTER_NAME = "clustername"
ORIGINAL_SOURCE = "originalsource"
SEQUENCE_ID = "sequenceid"
DELETION_TIMESTAMP = "deletiontimestamp"
STATUS_HASH = "statushash"
METADATA = "metadata"

ExtensionValue = str | int | bool | bytes | datetime


class SubResource(enum.StrEnum):
    SPEC = "spec"
    STATUS = "status"


class Action(enum.StrEnum):
    CREATE_REQUEST = "create_request"
    UPDATE_REQUEST = "update_request"
    DELETE_REQUEST = "delete_request"
    RESYNC_REQUEST = "resync_request"
    RESYNC_RESPONSE = "resync_response"


@dataclasses.dataclass(frozen=True, slots=True)
class EventType:
    """`<data type>.<spec|status>.<action>`."""

    sub_resource: SubResource
    action: Action
    data_type: str = MANIFEST_BUNDLES

    def __str__(self) -> str:
        return f"{self.data_type}.{self.sub_resource}.{self.action}"

    @classmethod
    def parse(cls, text: str, field: str = "type") -> EventType:
        parts = text.split(".")
        fix = f"use {MANIFEST_BUNDLES}.<spec|status>.<action>"
        if len(parts) < 5:
            raise errors.InvalidArgument(
                field, f"{_quoted(text)} is not <data type>.<spec|status>.<action>", fix
            )
        data_type, sub, action = ".".join(parts[:-2]), parts[-2], parts[-1]
        if data_type != MANIFEST_BUNDLES:
            raise errors.InvalidArgument(field, f"data type {_quoted(data_type)} is not supported", fix)
        try:
            sub_resource = SubResource(sub)
        except ValueError:
            raise errors.InvalidArgument(
                field, f"sub-resource {_quoted(sub)} is neither spec nor status", fix
            ) from None
        try:
            parsed_action = Action(action)
        except ValueError:
            choices = ", ".join(a.value for a in Action)
            raise errors.InvalidArgument(
                field, f"action {_quoted(action)} is unknown", f"use one of {choices}"
            ) from None
        return cls(sub_resource, parsed_action, data_type)


@dataclasses.dataclass(frozen=True, slots=True)
class CloudEvent:
    id: str
    source: str
    type: str
    spec_version: str = SPEC_VERSION
    time: datetime | None = None
    # Extension attributes by bare name (no transport prefix).
    extensions: dict[str, ExtensionValue] = dataclasses.field(default_factory=dict)
    data: bytes = b""
    data_content_type: str | None = None

    @property
    def is_heartbeat(self) -> bool:
        return self.type == HEARTBEAT_TYPE


def new_id() -> str:
    return str(uuid.uuid4())


def heartbeat() -> CloudEvent:
    """The keep-alive the server sends on Subscribe streams; no attributes, clients drop it."""
    return CloudEvent(id=new_id(), source="", type=HEARTBEAT_TYPE)


# Typed reads of extensions. Each accepts the forms upstream readers accept (ints and times also
# as strings) and raises InvalidArgument naming the extension.


def _quoted(text: str) -> str:
    # Error messages quote what was sent, cut short: a message must stay small.
    return repr(text if len(text) <= 64 else text[:64] + "...")


def get_str(event: CloudEvent, name: str, *, required: bool = True) -> str:
    value = event.extensions.get(name)
    if value is None or value == "":
        if required:
            raise errors.InvalidArgument(name, "extension is missing", f"set the {name!r} extension")
        return ""
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            raise errors.InvalidArgument(name, "is not UTF-8 text") from None
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def get_int(event: CloudEvent, name: str, *, required: bool = True, default: int = 0) -> int:
    value = event.extensions.get(name)
    if value is None or value == "":
        if required:
            raise errors.InvalidArgument(name, "extension is missing", f"set the {name!r} extension")
        return default
    if isinstance(value, bool | datetime):
        raise errors.InvalidArgument(name, f"must be an integer, got {type(value).__name__}")
    if isinstance(value, int):
        return value
    text = value.decode(errors="replace") if isinstance(value, bytes) else value
    try:
        return int(text.strip(), 10)
    except ValueError:
        raise errors.InvalidArgument(name, f"{_quoted(text)} is not an integer") from None


def get_time(event: CloudEvent, name: str, *, required: bool = True) -> datetime | None:
    value = event.extensions.get(name)
    if value is None or value == "":
        if required:
            raise errors.InvalidArgument(name, "extension is missing", f"set the {name!r} extension")
        return None
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return parse_time(value, name)
    raise errors.InvalidArgument(name, f"must be a timestamp, got {type(value).__name__}")


def get_uuid(event: CloudEvent, name: str) -> uuid.UUID:
    text = get_str(event, name)
    try:
        return uuid.UUID(text)
    except ValueError:
        raise errors.InvalidArgument(name, f"{_quoted(text)} is not a UUID") from None


def parse_time(text: str, field: str) -> datetime:
    """RFC 3339 (with `Z` or an offset, any fraction digits; nanoseconds are truncated)."""
    candidate = text.strip()
    if candidate.endswith(("Z", "z")):
        candidate = candidate[:-1] + "+00:00"
    # Python accepts at most 6 fraction digits; Go writes up to 9.
    head, dot, rest = candidate.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        candidate = f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}"
    try:
        parsed = datetime.fromisoformat(candidate)
    except ValueError:
        raise errors.InvalidArgument(field, f"{_quoted(text)} is not an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise errors.InvalidArgument(field, f"{_quoted(text)} has no time zone", "end it with Z or an offset")
    return parsed.astimezone(UTC)


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# The JSON (structured-mode) form, kept in the outbox so the relay can publish an event unchanged.


def to_json(event: CloudEvent) -> bytes:
    doc: dict[str, Any] = {
        "specversion": event.spec_version,
        "id": event.id,
        "source": event.source,
        "type": event.type,
    }
    if event.time is not None:
        doc["time"] = format_time(event.time)
    if event.data_content_type is not None:
        doc["datacontenttype"] = event.data_content_type
    for name, value in event.extensions.items():
        if isinstance(value, datetime):
            doc[name] = format_time(value)
        elif isinstance(value, bytes):
            doc[name] = base64.b64encode(value).decode()
        else:
            doc[name] = value
    if event.data:
        if (event.data_content_type or JSON_CONTENT_TYPE).endswith("json"):
            doc["data"] = orjson.Fragment(event.data)
        else:
            doc["data_base64"] = base64.b64encode(event.data).decode()
    return orjson.dumps(doc)


_CORE = frozenset({"specversion", "id", "source", "type", "time", "datacontenttype", "data", "data_base64"})


def from_json(raw: bytes) -> CloudEvent:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise errors.InvalidArgument("event", f"is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise errors.InvalidArgument("event", "must be a JSON object")
    data = b""
    if "data" in doc:
        data = orjson.dumps(doc["data"])
    elif "data_base64" in doc:
        data = _base64(doc["data_base64"])
    content_type = doc.get("datacontenttype")
    if content_type is not None and not isinstance(content_type, str):
        raise errors.InvalidArgument("datacontenttype", "must be a string", "send e.g. application/json")
    time_text = doc.get("time")
    return CloudEvent(
        id=str(doc.get("id", "")),
        source=str(doc.get("source", "")),
        type=str(doc.get("type", "")),
        spec_version=str(doc.get("specversion", SPEC_VERSION)),
        time=parse_time(time_text, "time") if isinstance(time_text, str) else None,
        extensions={k: v for k, v in doc.items() if k not in _CORE},
        data=data,
        data_content_type=content_type,
    )


def _base64(encoded: object) -> bytes:
    if isinstance(encoded, str):
        try:
            return base64.b64decode(encoded, validate=True)
        except ValueError:
            pass
    raise errors.InvalidArgument(
        "data_base64", "is not base64 text", "encode the data in base64, or send JSON data under data"
    )
