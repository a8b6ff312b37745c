"""The documents of upstream Maestro's REST API (its OpenAPI document, ``openapi/openapi.yaml``):
consumers, resource bundles, their lists and errors, as JSON-ready dicts; and the request bodies it
takes, checked.

Shapes: every object is an ``ObjectReference`` (``id``, ``kind``, ``href``); a list is ``kind``,
``page``, ``size`` (items in this page), ``total`` (items matching) and ``items``; an error is
``kind: Error`` with ``id`` (its code's number), ``href``, ``code`` (``maestro-<number>``),
``reason`` and ``operation_id``. A consumer's id is its name, which fleetplane keys consumers by.
A bundle's status is the agent's last report as upstream presents it: ``ObservedVersion``,
``SequenceID``, and the report's ``conditions`` and ``resourceStatus``.
"""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime
from typing import Any

from maestro.api import bundles, consumers, errors, search

BASE_PATH = "/api/maestro/v1"
CONSUMERS_PATH = f"{BASE_PATH}/consumers"
BUNDLES_PATH = f"{BASE_PATH}/resource-bundles"
ERRORS_PATH = f"{BASE_PATH}/errors"
#: a page's size when the client names none, and the most it may ask for
DEFAULT_SIZE = 100
MAX_SIZE = 5000

JsonObject = dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class ErrorCode:
    number: int
    http_status: int


class Codes(enum.Enum):
    """Upstream's error codes that fleetplane answers with, and their HTTP statuses."""

    FORBIDDEN = ErrorCode(4, 403)
    CONFLICT = ErrorCode(6, 409)
    NOT_FOUND = ErrorCode(7, 404)
    VALIDATION = ErrorCode(8, 400)
    GENERAL = ErrorCode(9, 500)
    NOT_IMPLEMENTED = ErrorCode(10, 405)
    UNAUTHENTICATED = ErrorCode(15, 401)
    MALFORMED_REQUEST = ErrorCode(17, 400)
    BAD_REQUEST = ErrorCode(21, 400)
    FAILED_TO_PARSE_SEARCH = ErrorCode(23, 400)
    UNAVAILABLE = ErrorCode(9, 503)


def error(code: Codes, reason: str, operation_id: str = "") -> JsonObject:
    number = code.value.number
    return {
        "kind": "Error",
        "id": str(number),
        "href": f"{ERRORS_PATH}/{number}",
        "code": f"maestro-{number}",
        "reason": reason,
        "operation_id": operation_id,
    }


def code_for(exc: errors.MaestroError) -> Codes:
    """The error code a domain error is answered with."""
    if isinstance(exc, search.InvalidSearch):
        return Codes.FAILED_TO_PARSE_SEARCH
    if isinstance(exc, errors.NotFound):
        return Codes.NOT_FOUND
    if isinstance(exc, errors.AlreadyExists | errors.Conflict):
        return Codes.CONFLICT
    if isinstance(exc, errors.InvalidArgument):
        return Codes.VALIDATION
    if isinstance(exc, errors.Unavailable):
        return Codes.UNAVAILABLE
    return Codes.BAD_REQUEST


def timestamp(value: datetime | None) -> str | None:
    """RFC 3339 in UTC, as upstream's Go server writes times."""
    if value is None:
        return None
    return value.isoformat().replace("+00:00", "Z")


def _reference(kind: str, path: str, ident: str) -> JsonObject:
    return {"id": ident, "kind": kind, "href": f"{path}/{ident}"}


def consumer(c: consumers.Consumer) -> JsonObject:
    return {
        **_reference("Consumer", CONSUMERS_PATH, c.name),
        "name": c.name,
        "labels": dict(c.labels),
        "created_at": timestamp(c.created_at),
        "updated_at": timestamp(c.created_at),
    }


def bundle_status(record: bundles.BundleRecord) -> JsonObject | None:
    if record.status is None:
        return None
    return {
        "ObservedVersion": record.status_version,
        "SequenceID": str(record.status.sequence_id),
        "conditions": record.status.conditions,
        "resourceStatus": record.status.resource_status,
    }


def resource_bundle(record: bundles.BundleRecord) -> JsonObject:
    b = record.bundle
    document: JsonObject = {
        **_reference("ResourceBundle", BUNDLES_PATH, str(b.id)),
        "name": str(b.metadata.get("name") or b.id),
        "consumer_name": b.consumer,
        "version": b.version,
        "created_at": timestamp(b.created_at),
        "updated_at": timestamp(b.updated_at),
        "metadata": b.metadata,
        "manifests": b.manifests,
        "delete_option": b.delete_option or {},
        "manifest_configs": b.manifest_configs,
    }
    if b.deleted_at is not None:
        document["deleted_at"] = timestamp(b.deleted_at)
    status = bundle_status(record)
    if status is not None:
        document["status"] = status
    return document


def list_head(kind: str, page: int, size: int, total: int) -> JsonObject:
    """A list's fields besides its items."""
    return {"kind": kind, "page": page, "size": size, "total": total}


@dataclasses.dataclass(frozen=True, slots=True)
class PageRequest:
    page: int
    size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size


def page_request(page: str | None, size: str | None) -> PageRequest:
    """``page`` (from 1) and ``size`` (0 answers the total alone) as upstream takes them."""
    return PageRequest(
        _integer("page", page, 1, 1, 1_000_000_000),
        _integer("size", size, DEFAULT_SIZE, 0, MAX_SIZE),
    )


def _integer(name: str, text: str | None, default: int, low: int, high: int) -> int:
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise errors.InvalidArgument(
            name, f"{text[:40]!r} is not a number", f"give {name}={default}"
        ) from None
    if not low <= value <= high:
        raise errors.InvalidArgument(name, f"{value} is out of range", f"give {low} to {high}")
    return value


def _object(body: object, what: str) -> JsonObject:
    if not isinstance(body, dict):
        raise errors.InvalidArgument(
            "body", f"is not a JSON object of {what}", f"send {what} as a JSON object"
        )
    return body


def _labels(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise errors.InvalidArgument("labels", "is not an object of strings", 'send {"key": "value", ...}')
    return consumers.validate_labels(value)


def consumer_create(body: object) -> tuple[str, dict[str, str]]:
    """The name and labels of a consumer to create (``name`` required)."""
    doc = _object(body, "a consumer")
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        raise errors.InvalidArgument("name", "is missing", 'send {"name": "<cluster name>"}')
    return name, _labels(doc.get("labels"))


def consumer_patch(body: object) -> dict[str, str]:
    """The labels a consumer patch replaces the consumer's with."""
    doc = _object(body, "a consumer patch")
    if "labels" not in doc:
        raise errors.InvalidArgument("labels", "is missing", 'send {"labels": {"key": "value"}}')
    return _labels(doc["labels"])
