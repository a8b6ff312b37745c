"""List filters and pages, shared by storage (which runs the queries) and the query service.

Page tokens are opaque strings made by storage; clients hand back the `next_page_token` they got.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Generic, TypeVar

from maestro.api import consumers, errors, validation

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 500
# The most a page holds, whatever a client asks: a page is read whole into the server's memory.
MAX_PAGE_SIZE = 5000
# The most a page's documents (spec, metadata, status) weigh, whatever the count: a page fits gRPC's
# default 4 MiB message with room for its envelope, whatever the bundle sizes. A page always holds
# at least one bundle, so one larger than this comes alone.
DEFAULT_PAGE_BYTES = 3 * 1024 * 1024
# What a listed bundle weighs besides its documents, in the budget: ids, names, times, hash.
ROW_OVERHEAD_BYTES = 256
_INT64_MAX = (1 << 63) - 1


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


def page_size(requested: int, maximum: int = MAX_PAGE_SIZE) -> int:
    """The page size to use for a client's request (0 or less means the default), at most `maximum`
    (and never more than `MAX_PAGE_SIZE`)."""
    cap = max(1, min(maximum, MAX_PAGE_SIZE))
    if requested <= 0:
        return min(DEFAULT_PAGE_SIZE, cap)
    return min(requested, cap)


def page_bytes(requested: int, maximum: int = 0) -> int:
    """The byte budget of a page: ``requested``, at most ``maximum`` when there is one (above 0);
    ``requested`` 0 or less means ``maximum``, or ``DEFAULT_PAGE_BYTES`` without one."""
    if requested <= 0:
        return maximum if maximum > 0 else DEFAULT_PAGE_BYTES
    return min(requested, maximum) if maximum > 0 else requested


def check_resource_filter(where: ResourceFilter) -> ResourceFilter:
    """A filter from a client: its texts go to PostgreSQL, which refuses NUL (a failed query, not
    an answer naming the problem) — refused here instead, as are oversize ones."""
    if where.consumer:
        consumers.check_lookup_name(where.consumer, "consumer")
    if where.source:
        validation.check_text(where.source, "source")
    _check_selector(where.labels)
    return where


def check_consumer_filter(where: ConsumerFilter) -> ConsumerFilter:
    _check_selector(where.labels)
    return where


def _check_selector(labels: Mapping[str, str]) -> None:
    for key, value in labels.items():
        validation.check_text(key, f"label_selector key {validation.shown(key)}", validation.MAX_LABEL_BYTES)
        validation.check_text(value, f"label_selector[{validation.shown(key)}]", validation.MAX_LABEL_BYTES)


def resume_token(rev: int) -> str:
    """The opaque token a watcher reconnects with to continue after status revision `rev`."""
    return str(rev)


def parse_resume_token(token: str, field: str = "resume_token") -> int:
    """The status revision after which to resume; an empty token means from the beginning."""
    if not token:
        return 0
    # isdigit alone takes other scripts' digits, which int() then refuses; and a revision is a
    # PostgreSQL bigint.
    if not (token.isascii() and token.isdigit()) or len(token) > 19 or int(token) > _INT64_MAX:
        raise errors.InvalidArgument(
            field, f"{validation.shown(token)} is not a resume token", "send a token the server gave"
        )
    return int(token)
