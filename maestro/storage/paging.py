"""Opaque page tokens for keyset pagination; storage makes them and reads them back."""

from __future__ import annotations

import base64
import binascii
import uuid

from maestro.api import consumers, errors

_PREFIX = "k1."


def resource_token(last_id: uuid.UUID) -> str:
    return _PREFIX + base64.urlsafe_b64encode(last_id.bytes).decode().rstrip("=")


def parse_resource_token(token: str) -> uuid.UUID | None:
    if not token:
        return None
    try:
        if not token.startswith(_PREFIX):
            raise ValueError(token)
        raw = token[len(_PREFIX) :]
        return uuid.UUID(bytes=base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, binascii.Error):
        raise errors.InvalidArgument(
            "page_token", "is not a token this server made", "send the next_page_token of the previous page"
        ) from None


def name_token(last_name: str) -> str:
    return _PREFIX + base64.urlsafe_b64encode(last_name.encode()).decode().rstrip("=")


def parse_name_token(token: str) -> str | None:
    if not token:
        return None
    try:
        if not token.startswith(_PREFIX):
            raise ValueError(token)
        raw = token[len(_PREFIX) :]
        # The name is compared in SQL: a NUL (never in a token this server made) would fail the query.
        return consumers.check_lookup_name(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError, errors.InvalidArgument):
        raise errors.InvalidArgument(
            "page_token", "is not a token this server made", "send the next_page_token of the previous page"
        ) from None
