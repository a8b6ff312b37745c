"""``kubeio.watch.follow``'s recovery paths, over a scripted API server: an expired version (410 as a
watch event or as the answer) and a lost connection each start over with a new list."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp

from kubeio import rest, watch
from kubeio.errors import ClusterError


class ScriptedServer:
    """Each list answers at a new resourceVersion; each watch plays the next scripted outcome."""

    def __init__(self, watches: list[Any]) -> None:
        self.watches = watches
        self.lists = 0
        self.watched_from: list[str] = []
        #: the Accept header of each list and watch
        self.accepted: list[str] = []

    async def list_all(
        self, path: str, *, accept: str = rest.JSON, **_: Any
    ) -> tuple[list[dict[str, Any]], str]:
        self.lists += 1
        self.accepted.append(accept)
        return [{"metadata": {"name": f"cm{self.lists}"}}], f"{self.lists}00"

    async def stream(
        self, path: str, *, query: Sequence[tuple[str, str]], accept: str = rest.JSON
    ) -> AsyncIterator[dict[str, Any]]:
        self.watched_from.append(dict(query)["resourceVersion"])
        self.accepted.append(accept)
        outcome = self.watches.pop(0) if self.watches else "hang"
        if outcome == "hang":
            await asyncio.Event().wait()
        if isinstance(outcome, BaseException):
            raise outcome
        for event in outcome:
            yield event


def event(kind: str, name: str, version: str) -> dict[str, Any]:
    return {"type": kind, "object": {"metadata": {"name": name, "resourceVersion": version}}}


async def play(
    server: ScriptedServer, lists_wanted: int, *, metadata_only: bool = False
) -> tuple[list[list[str]], list[tuple[str, str]]]:
    lists: list[list[str]] = []
    seen: list[tuple[str, str]] = []
    task = asyncio.create_task(
        watch.follow(
            server,  # type: ignore[arg-type]
            "/api/v1/configmaps",
            lambda items: lists.append([i["metadata"]["name"] for i in items]),
            lambda kind, obj: seen.append((kind, obj["metadata"]["name"])),
            pause=0.01,
            metadata_only=metadata_only,
        )
    )
    try:
        for _ in range(200):
            if len(lists) >= lists_wanted and not server.watches:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return lists, seen


async def test_a_stream_that_ends_is_resumed_from_the_last_version_bookmarks_included() -> None:
    server = ScriptedServer(
        [
            [event("ADDED", "a", "101"), event("BOOKMARK", "", "150")],
            [event("MODIFIED", "a", "151")],
        ]
    )
    lists, seen = await play(server, 1)
    assert lists == [["cm1"]]
    assert seen == [("ADDED", "a"), ("MODIFIED", "a")], "bookmarks are not changes"
    assert server.watched_from == ["100", "150", "151"]


async def test_an_expired_version_lists_again_whether_said_by_an_event_or_by_the_answer() -> None:
    server = ScriptedServer(
        [
            [{"type": "ERROR", "object": {"kind": "Status", "code": 410, "message": "too old"}}],
            ClusterError("too old resource version", status=410),
        ]
    )
    lists, _ = await play(server, 3)
    assert lists == [["cm1"], ["cm2"], ["cm3"]]
    assert server.watched_from[:3] == ["100", "200", "300"]


async def test_a_lost_connection_lists_again_after_a_pause() -> None:
    server = ScriptedServer([aiohttp.ClientPayloadError("connection reset")])
    lists, _ = await play(server, 2)
    assert lists == [["cm1"], ["cm2"]]


async def test_a_metadata_only_follower_lists_and_watches_metadata_alone() -> None:
    server = ScriptedServer([[event("ADDED", "a", "101")]])
    await play(server, 1, metadata_only=True)
    assert server.accepted[:3] == [rest.METADATA_LIST, rest.METADATA, rest.METADATA]
    plain = ScriptedServer([[event("ADDED", "a", "101")]])
    await play(plain, 1)
    assert set(plain.accepted) == {rest.JSON}
