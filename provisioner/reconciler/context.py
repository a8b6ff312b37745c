"""What every step of a reconcile shares: the settings, the clients, the per-composite locks, and
reading the management cluster's objects."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from kubeio import objects
from kubeio.errors import NotFoundError
from maestro.client import MaestroClient
from provisioner import pipeline
from provisioner.functions import installed
from provisioner.providers.base import ClusterProvider, ProviderError
from provisioner.reconciler.clusters import ClusterClients
from trust import authority

JsonObject = dict[str, Any]
FIELD_MANAGER = "fleetplane-provisioner"
#: how long a listing of definitions, compositions or revisions is reused (``recent_objects``)
RECENT_SECONDS = 5.0


class Requeue(Exception):
    """Not done yet: call again after ``delay`` seconds (the status already says why). ``failed``:
    the pass failed (``Synced=False``), rather than waiting for something under way."""

    def __init__(self, message: str, delay: float = 5.0, *, failed: bool = False) -> None:
        super().__init__(message)
        self.delay = delay
        self.failed = failed


class Reporter(Protocol):
    def __call__(self, obj: Mapping[str, Any], kind: str, reason: str, message: str) -> None: ...


@dataclass
class Settings:
    #: where templates named by a Composition's ``spec.template.path`` live
    compositions_dir: Path
    #: the ``platform`` variable of every template (hub, maestro, argocd; see ``render``)
    platform: Mapping[str, Any]
    #: seconds a deletion waits for the agent to confirm the cluster's works are gone (and for Argo CD
    #: to delete the composed Applications); after that (or at once when the agent is gone) it stops
    #: the agent and leaves the works to Maestro's grace period for unconfirmed deletes, saying so in
    #: the condition and, once they are gone, in an Event
    drain_seconds: float = 120.0
    requeue_seconds: float = 3.0
    #: the platform CA, which issues each cluster's agent identity (``target: identity``)
    authority: authority.CertificateAuthority | None = None
    #: the CAs agents verify Kafka's brokers against, when not the platform CA (``kafka-ca.crt`` in
    #: each agent's Secret); None: the platform CA
    kafka_ca: bytes | None = None
    #: the composition functions pipelines may call (the built-in template function, entry points,
    #: function servers)
    functions: pipeline.Installed = field(default_factory=installed.installed)
    #: composite passes and deletion steps under way at once; the others wait their turn. A fleet's
    #: thousand composites passing at once would each take a thousandth of the process, finish
    #: together at the end, and starve the event loop (and with it the leader's Lease renewals).
    concurrent_passes: int = 16


@dataclass
class Context:
    hub: objects.Objects
    maestro: MaestroClient
    providers: Mapping[str, ClusterProvider]
    settings: Settings
    report: Reporter
    #: waits until the operator's own watches include kinds whose CRDs were just served
    kinds_served: Callable[[Sequence[str]], Awaitable[None]] | None = None
    clusters: ClusterClients = field(default_factory=ClusterClients)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _recent: dict[str, tuple[float, asyncio.Task[list[JsonObject]]]] = field(default_factory=dict)
    _slots: dict[str, asyncio.Semaphore] = field(default_factory=dict)
    #: composite -> the generation its own pass gave it by binding its Composition and revision
    bound_generations: dict[str, int] = field(default_factory=dict)

    def lock(self, key: str) -> asyncio.Lock:
        """One pass or deletion step of a composite at a time."""
        return self._locks.setdefault(key, asyncio.Lock())

    @contextlib.asynccontextmanager
    async def turn(self, key: str, kind: str = "composite") -> AsyncIterator[None]:
        """One step for ``key``: one at a time per key, and at most ``concurrent_passes`` at once
        of each ``kind`` (a claim's short step does not queue behind the composites' passes)."""
        slots = self._slots.setdefault(kind, asyncio.Semaphore(self.settings.concurrent_passes))
        async with slots, self.lock(key):
            yield

    def provider(self, wanted: str) -> ClusterProvider:
        provider = self.providers.get(wanted)
        if provider is None:
            raise ProviderError(
                "ProviderNotConfigured",
                f"no {wanted!r} provider in this provisioner; it has {', '.join(sorted(self.providers))}",
                retryable=False,
            )
        return provider

    async def list_objects(
        self, group: str, version: str, plural: str, *, label_selector: str = ""
    ) -> list[JsonObject]:
        base = f"/apis/{group}/{version}" if group else f"/api/{version}"
        query = [("labelSelector", label_selector)] if label_selector else []
        try:
            reply = await self.hub.rest.request("GET", f"{base}/{plural}", query=query)
        except NotFoundError:
            return []
        return list(reply.get("items") or [])

    async def recent_objects(self, group: str, version: str, plural: str) -> list[JsonObject]:
        """A listing of the platform's own kinds (definitions, compositions, revisions), read at most
        once every ``RECENT_SECONDS`` however many passes ask for it: a fleet's thousand claims
        and composites would otherwise list them on every event. Whatever this process changes
        among them it ``forget_recent``s; others' changes show within that time."""
        key = f"{group}/{version}/{plural}"
        loop = asyncio.get_running_loop()
        cached = self._recent.get(key)
        if cached is None or loop.time() - cached[0] > RECENT_SECONDS or _failed(cached[1]):
            # One read shared by every caller that asks meanwhile.
            cached = (loop.time(), asyncio.ensure_future(self.list_objects(group, version, plural)))
            self._recent[key] = cached
        return list(await asyncio.shield(cached[1]))

    def forget_recent(self) -> None:
        self._recent.clear()

    async def merge_patch(self, obj: Mapping[str, Any], patch: Mapping[str, Any]) -> JsonObject:
        return await self.hub.rest.request(
            "PATCH", await self.hub.path(obj), body=patch, content_type="application/merge-patch+json"
        )


def _failed(task: asyncio.Task[list[JsonObject]]) -> bool:
    return task.done() and (task.cancelled() or task.exception() is not None)


def now() -> datetime:
    return datetime.now(UTC)


def meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def generation(obj: Mapping[str, Any]) -> int:
    return int(meta(obj).get("generation") or 0)


def kind_path(definition: Mapping[str, Any], *, claim: bool) -> tuple[str, str, str]:
    """``(group, version, plural)`` of a definition's composite or claim kind (its served version)."""
    spec = definition.get("spec") or {}
    names = spec.get("claimNames" if claim else "names") or {}
    versions = spec.get("versions") or [{}]
    served = next((v for v in versions if v.get("referenceable")), versions[0])
    return str(spec.get("group")), str(served.get("name")), str(names.get("plural"))
