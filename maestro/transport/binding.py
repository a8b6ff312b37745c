"""The CloudEvents Kafka protocol binding, binary content mode.

Attributes travel as ``ce_<name>`` headers with their canonical string form; the content type as
the ``content_type`` header; the data as the message value. Decoding is the inverse and keeps
values as strings: the codec that owns the event types turns them back into ints and times.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence

Headers = list[tuple[str, bytes]]
CONTENT_TYPE = "content_type"
_PREFIX = "ce_"


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def encode(attributes: Mapping[str, object], content_type: str | None = None) -> Headers:
    headers = [
        (f"{_PREFIX}{name}", _text(value).encode()) for name, value in attributes.items() if value is not None
    ]
    if content_type:
        headers.append((CONTENT_TYPE, content_type.encode()))
    return headers


HeaderValue = bytes | str | None


def decode(
    headers: Sequence[tuple[str, HeaderValue]] | Mapping[str, HeaderValue] | None,
) -> tuple[dict[str, str], str | None]:
    """Headers -> (attributes by name without the prefix, content type)."""
    attributes: dict[str, str] = {}
    content_type: str | None = None
    pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
    for key, raw in pairs:
        # Not UTF-8: decoded with U+FFFD in place of the bad bytes, so that the event reaches the
        # checks that refuse it alone; raising here would drop the whole batch read with it.
        value = raw.decode(errors="replace") if isinstance(raw, bytes) else (raw or "")
        if key == CONTENT_TYPE:
            content_type = value
        elif key.startswith(_PREFIX):
            attributes[key[len(_PREFIX) :]] = value
    return attributes, content_type
