"""List, then watch, one collection for as long as it is wanted: the reflector loop of client-go.

``follow`` lists the collection (in pages), hands every object to ``on_list``, then watches from
the list's resourceVersion and hands each change to ``on_event``. A watch the server ends (its
``timeoutSeconds``) is resumed from the last resourceVersion seen (bookmarks keep it fresh); a
``410 Gone`` (that version was compacted away), a lost connection or an unserved kind (its CRD not
there yet) starts over with a new list after a pause, so a caller never misses a change for long:
whatever happened while it was not watching shows in the next list.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import aiohttp

from kubeio.errors import ClusterError, ClusterUnavailableError
from kubeio.rest import JSON, METADATA, METADATA_LIST, KubeRest

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]

OnList = Callable[[Sequence[JsonObject]], None]
OnEvent = Callable[[str, JsonObject], None]


class _Relist(Exception):
    """The watch cannot resume from its resourceVersion: list again."""


async def follow(
    rest: KubeRest,
    path: str,
    on_list: OnList,
    on_event: OnEvent,
    *,
    label_selector: str = "",
    field_selector: str = "",
    timeout_seconds: int = 300,
    pause: float = 2.0,
    on_error: Callable[[Exception], None] | None = None,
    metadata_only: bool = False,
) -> NoReturn:
    """Run until cancelled; ``path`` is a collection (``/api/v1/namespaces/x/configmaps``).
    ``on_error`` hears why a list or watch was interrupted, before the pause. ``metadata_only``
    lists and watches the objects' metadata alone (as client-go's metadata informers do)."""
    accept = (METADATA_LIST, METADATA) if metadata_only else (JSON, JSON)
    selector = [("labelSelector", label_selector)] if label_selector else []
    if field_selector:
        selector.append(("fieldSelector", field_selector))
    while True:
        try:
            version = await _list(rest, path, selector, on_list, accept[0])
            while True:
                version = await _watch(rest, path, selector, version, timeout_seconds, on_event, accept[1])
        except _Relist:
            log.debug("watch of %s expired; listing again", path)
            continue
        except (ClusterError, ClusterUnavailableError, aiohttp.ClientError, OSError, TimeoutError) as exc:
            # Not served (404), refused, or unreachable: what changed meanwhile shows in the next list.
            log.debug("watch of %s interrupted (%s); listing again in %.0fs", path, exc, pause)
            if on_error is not None:
                on_error(exc)
        await asyncio.sleep(pause)


async def _list(
    rest: KubeRest, path: str, selector: list[tuple[str, str]], on_list: OnList, accept: str
) -> str:
    items, version = await rest.list_all(path, query=selector, accept=accept)
    on_list(items)
    return version


async def _watch(
    rest: KubeRest,
    path: str,
    selector: list[tuple[str, str]],
    version: str,
    timeout_seconds: int,
    on_event: OnEvent,
    accept: str,
) -> str:
    """Watch from ``version`` until the server ends the stream; returns the last version seen."""
    query = [
        *selector,
        ("watch", "1"),
        ("resourceVersion", version),
        ("allowWatchBookmarks", "true"),
        ("timeoutSeconds", str(timeout_seconds)),
    ]
    try:
        async for event in rest.stream(path, query=query, accept=accept):
            kind = str(event.get("type") or "")
            obj = event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise _Relist
                raise ClusterError(str(obj.get("message") or obj), status=int(obj.get("code") or 0))
            version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
            if kind != "BOOKMARK":
                on_event(kind, obj)
    except ClusterError as exc:
        if exc.status == 410:
            raise _Relist from exc
        raise
    return version
