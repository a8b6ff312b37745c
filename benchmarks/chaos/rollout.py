"""A rollout as a source makes one: it creates works, then updates some and deletes some, through
Maestro's source API, retrying what fails as a source does, while a fault strikes.

Each work is a labelled ConfigMap in one of the clusters (spread evenly); its data names the work
and the revision of the last create or update. Every third work is updated once (revision 2),
every fifth deleted after that. The calls go out in three waves (creates, then updates, then
deletes; ``concurrency`` at once, spread over every server address); a work's next call waits
until its previous one was accepted.

A call that fails with an error the client calls retryable (the server is away, or could not
serve it now) or times out is sent again, to the next address, until it is
accepted or ``give_up_after`` passes. Retrying is safe: a create or an update sent again with
the same spec is a no-op, and a delete sent again finds the work deleting or (once its deletion
was confirmed) gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import uuid
from collections import Counter
from collections.abc import Callable, Sequence

from benchmarks.chaos.calls import Calls, in_background
from benchmarks.chaos.outcome import Intended
from maestro.api import bundles
from maestro.client import Credentials, MaestroClient

#: the label of the rollout's ConfigMaps: the rollout's id
LABEL = "chaos.test.fleetplane.io/rollout"
UPDATE_EVERY, DELETE_EVERY = 3, 5


class Call(enum.Enum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


@dataclasses.dataclass(frozen=True)
class Work:
    id: uuid.UUID
    cluster: str
    name: str
    index: int

    @property
    def updated(self) -> bool:
        return self.index % UPDATE_EVERY == 0

    @property
    def deleted(self) -> bool:
        return self.index % DELETE_EVERY == 0


class Rollout:
    def __init__(
        self,
        addresses: Sequence[str],
        credentials: Credentials,
        clusters: Sequence[str],
        namespace: str,
        count: int,
        *,
        concurrency: int = 16,
        call_timeout: float = 15,
        give_up_after: float = 180,
    ) -> None:
        self.id = uuid.uuid4().hex[:10]
        #: the source the rollout's works belong to: the query API lists them by it
        self.source = f"chaos-{self.id}"
        self.namespace = namespace
        self.works = [
            Work(uuid.uuid4(), clusters[i % len(clusters)], f"cm-{self.id}-{i:04d}", i) for i in range(count)
        ]
        self.calls = (
            [(Call.CREATE, w) for w in self.works]
            + [(Call.UPDATE, w) for w in self.works if w.updated]
            + [(Call.DELETE, w) for w in self.works if w.deleted]
        )
        self._clients = [MaestroClient(a, source=self.source, credentials=credentials) for a in addresses]
        self.sent = Calls(concurrency)
        self._call_timeout = call_timeout
        self._give_up_after = give_up_after
        self._accepted: dict[uuid.UUID, asyncio.Event] = {}

    @property
    def total(self) -> int:
        return len(self.calls)

    @property
    def acknowledged(self) -> int:
        return self.sent.acknowledged

    @property
    def retries(self) -> Counter[str]:
        return self.sent.retries

    def intended(self) -> list[Intended]:
        """What every work is once all the calls were accepted."""
        return [
            Intended(
                w.id,
                w.cluster,
                w.name,
                revision=2 if w.updated else 1,
                version=2 if w.updated else 1,
                deleted=w.deleted,
            )
            for w in self.works
        ]

    def bundle(self, work: Work, revision: int) -> bundles.ManifestBundle:
        return bundles.ManifestBundle(
            manifests=[
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": work.name, "namespace": self.namespace, "labels": {LABEL: self.id}},
                    "data": {"work": str(work.id), "revision": str(revision)},
                }
            ]
        )

    async def run(self) -> None:
        async def send(index: int, entry: tuple[Call, Work]) -> None:
            call, work = entry
            previous = self._accepted.get(work.id)
            if previous is not None:
                await previous.wait()
            accepted = self._accepted[work.id] = asyncio.Event()
            await self._send(index, call, work)
            accepted.set()

        try:
            await self.sent.send_all(self.calls, send)
        finally:
            for c in self._clients:
                await c.close()

    async def _send(self, index: int, call: Call, work: Work) -> None:
        async def once(source: MaestroClient) -> None:
            if call is Call.CREATE:
                await source.apply(work.cluster, work.id, self.bundle(work, 1))
            elif call is Call.UPDATE:
                await source.apply(work.cluster, work.id, self.bundle(work, 2), create=False)
            else:
                await source.delete(work.cluster, work.id)

        await self.sent.until_accepted(
            f"{call.value} of {work.name} ({work.id})",
            self._clients,
            index,
            once,
            call_timeout=self._call_timeout,
            give_up_after=self._give_up_after,
            # An earlier attempt went through unseen, and the deletion is already confirmed.
            went_through=lambda exc: call is Call.DELETE and exc.code == "NOT_FOUND",
        )

    async def until(self, what: str, condition: Callable[[], bool], timeout: float = 120) -> None:
        """Wait until ``condition`` (of the rollout's counts) holds; fails saying what was seen."""
        await self.sent.until(what, condition, timeout, f" of {self.total}")

    async def until_acknowledged(self, count: int, timeout: float = 120) -> None:
        await self.until(f"{count} calls accepted", lambda: self.acknowledged >= count, timeout)


def rolling(rollout: Rollout) -> contextlib.AbstractAsyncContextManager[asyncio.Task[None]]:
    """Run ``rollout`` in the background; on leaving, wait for it to finish (its errors propagate)."""
    return in_background(rollout.run, f"rollout-{rollout.id}")
