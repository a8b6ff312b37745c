"""The source client's PublishBatch batching, over fake stubs.

Cases: events published while a call is in flight go out together in the next call, and each
caller gets its own event's outcome (a refused one raises with the server's code and message); a
failed call fails every caller of its batch; a server without PublishBatch gets single Publish
calls from then on; no call carries more than the most events or bytes (a larger event goes
alone), and the events of a batch the server refuses as too large are sent one by one.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest

from maestro.client import _PublishBatcher
from maestro.wire import stubs


def event(n: int, size: int = 0) -> stubs.cloudevent.CloudEvent:
    return stubs.cloudevent.CloudEvent(id=f"e{n}", binary_data=b"x" * size)


class FakeServer:
    def __init__(self, refuse: dict[str, tuple[grpc.StatusCode, str]] | None = None) -> None:
        self.calls: list[list[str]] = []
        self.single: list[str] = []
        self.refuse = refuse or {}
        self.release = asyncio.Event()
        self.fail: grpc.StatusCode | None = None

    async def batch(self, request: stubs.source.PublishBatchRequest) -> stubs.source.PublishBatchResponse:
        self.calls.append([e.id for e in request.events])
        await self.release.wait()
        if self.fail is not None:
            raise grpc.aio.AioRpcError(self.fail, grpc.aio.Metadata(), grpc.aio.Metadata(), details="nope")
        return stubs.source.PublishBatchResponse(
            results=[
                stubs.source.PublishResult(code=self.refuse[e.id][0].value[0], message=self.refuse[e.id][1])
                if e.id in self.refuse
                else stubs.source.PublishResult()
                for e in request.events
            ]
        )

    async def publish(self, e: stubs.cloudevent.CloudEvent) -> None:
        self.single.append(e.id)


async def test_events_published_meanwhile_share_the_next_call_and_get_their_own_outcome() -> None:
    server = FakeServer(refuse={"e2": (grpc.StatusCode.NOT_FOUND, "consumer cluster-9 not found")})
    batcher = _PublishBatcher(server.batch, server.publish, in_flight=1)
    first = asyncio.create_task(batcher.publish(event(0)))
    await asyncio.sleep(0)
    later = [asyncio.create_task(batcher.publish(event(n))) for n in (1, 2, 3)]
    await asyncio.sleep(0.01)
    assert server.calls == [["e0"]]  # the others wait for the call in flight
    server.release.set()
    await first
    outcomes = await asyncio.gather(*later, return_exceptions=True)
    assert server.calls == [["e0"], ["e1", "e2", "e3"]]
    assert outcomes[0] is None and outcomes[2] is None
    refused = outcomes[1]
    assert isinstance(refused, grpc.aio.AioRpcError)
    assert refused.code() == grpc.StatusCode.NOT_FOUND and refused.details() == "consumer cluster-9 not found"


async def test_a_failed_call_fails_every_caller_of_its_batch() -> None:
    server = FakeServer()
    server.fail = grpc.StatusCode.UNAVAILABLE
    server.release.set()
    batcher = _PublishBatcher(server.batch, server.publish)
    outcomes = await asyncio.gather(*(batcher.publish(event(n)) for n in range(3)), return_exceptions=True)
    assert all(
        isinstance(o, grpc.aio.AioRpcError) and o.code() == grpc.StatusCode.UNAVAILABLE for o in outcomes
    )


async def test_a_server_without_publish_batch_gets_single_publishes() -> None:
    server = FakeServer()
    server.fail = grpc.StatusCode.UNIMPLEMENTED
    server.release.set()
    batcher = _PublishBatcher(server.batch, server.publish, in_flight=1)
    await asyncio.gather(*(batcher.publish(event(n)) for n in range(3)))
    await batcher.publish(event(3))
    assert len(server.calls) == 1 and server.single == ["e0", "e1", "e2", "e3"]


@pytest.mark.parametrize("size", [1, 1200])
async def test_no_call_carries_more_than_the_most_events(size: int) -> None:
    server = FakeServer()
    server.release.set()
    batcher = _PublishBatcher(server.batch, server.publish, in_flight=1, max_events=500)
    await asyncio.gather(*(batcher.publish(event(n)) for n in range(size)))
    assert max(len(c) for c in server.calls) <= 500
    assert sorted(e for c in server.calls for e in c) == sorted(f"e{n}" for n in range(size))


async def test_no_call_carries_more_than_the_most_bytes_and_a_larger_event_goes_alone() -> None:
    server = FakeServer()
    server.release.set()
    batcher = _PublishBatcher(server.batch, server.publish, in_flight=1, max_bytes=1000)
    sizes = {0: 300, 1: 300, 2: 300, 3: 300, 4: 2500, 5: 100}
    await asyncio.gather(*(batcher.publish(event(n, size)) for n, size in sizes.items()))
    assert server.calls == [["e0"], ["e1", "e2", "e3"], ["e4"], ["e5"]]


async def test_the_events_of_a_batch_refused_as_too_large_are_sent_one_by_one() -> None:
    server = FakeServer()
    server.fail = grpc.StatusCode.RESOURCE_EXHAUSTED
    batcher = _PublishBatcher(server.batch, server.publish, in_flight=1)
    first = asyncio.create_task(batcher.publish(event(0)))
    await asyncio.sleep(0)
    later = [asyncio.create_task(batcher.publish(event(n))) for n in (1, 2)]
    await asyncio.sleep(0.01)
    server.release.set()
    # A batch of one is refused as Publish would refuse it; the others still get through alone.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await first
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    await asyncio.gather(*later)
    assert server.calls == [["e0"], ["e1", "e2"]] and server.single == ["e1", "e2"]
