"""A small cache whose answers expire: what the server learnt about a caller, kept briefly."""

from __future__ import annotations

import collections
import time
from collections.abc import Hashable
from typing import Generic, TypeVar

_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")


class TTLCache(Generic[_K, _V]):
    """At most ``size`` answers, each kept ``ttl`` seconds: a hub review per call would make the
    hub's API server the limit of the whole pipeline, and a revoked permission must not live long."""

    def __init__(self, ttl: float, size: int) -> None:
        self._ttl = ttl
        self._size = size
        self._items: collections.OrderedDict[_K, tuple[float, _V]] = collections.OrderedDict()

    def get(self, key: _K) -> _V | None:
        found = self._items.get(key)
        if found is None:
            return None
        if found[0] < time.monotonic():
            del self._items[key]
            return None
        return found[1]

    def put(self, key: _K, value: _V) -> None:
        self._items[key] = (time.monotonic() + self._ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)
