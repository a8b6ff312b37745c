"""List filters and pages, shared by storage (which runs the queries) and the query service.

Page tokens are opaque strings made by storage; clients hand back the `next_page_token` they got.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Generic, TypeVar

from maestro.api import errors

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 500
MAX_PAGE_SIZE = 5000


@dataclasses.dataclass(frozen=True, slots=True)
class ResourceFilter:
    """Empty fields match everything; every label pair must match the bundle's metadata labels."""

    consumer: str = ""
    source: str = ""
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True)
class ConsumerFilter:
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: Sequence[T]
    # Empty on the last page.
    next_page_token: str = ""


def page_size(requested: int) -> int:
    """The page size to use for a client's request (0 or less means the default)."""
    if requested <= 0:
        return DEFAULT_PAGE_SIZE
    return min(requested, MAX_PAGE_SIZE)


def resume_token(rev: int) -> str:
    """The opaque token a watcher reconnects with to continue after status revision `rev`."""
    return str(rev)


def parse_resume_token(token: str, field: str = "resume_token") -> int:
    """The status revision after which to resume; an empty token means from the beginning."""
    if not token:
        return 0
    if not token.isdigit():
        raise errors.InvalidArgument(
            field, f"{token!r} is not a resume token", "send a token the server gave"
        )
    return int(token)
