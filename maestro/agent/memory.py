"""Simulated agents' cluster: the real apply logic over objects kept in a dict.

Benchmarks run many agents in one process, each a real agent with a `MemoryApplier`; unit tests
use it to exercise `bundle_applier` without a cluster. Every call is plain dict work on the event loop:
no threads, no tasks, no timers. Argo CD `Application`s get the status a worker's Argo CD would
give them — `status.sync.status=Synced`, `status.health.status=Healthy`, a revision — once
`argocd_sync_delay` seconds have passed since their spec last changed; the status is filled in
lazily when the object is next read, so a thousand idle Applications cost nothing.

A restart is simulated by building a new `MemoryApplier` over the same `MemoryBackend`.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from kubeio.discovery import ResourceType
from maestro.agent import records
from maestro.agent.backend import DeleteState
from maestro.agent.bundle_applier import ApplierSettings, BundleApplier
from maestro.agent.errors import AgentError, ClusterError, ConflictError
from maestro.agent.manifests import CLUSTER_SCOPED_KINDS, ObjectRef, guess_resource, split_api_version

JsonObject = dict[str, Any]
Key = tuple[str, str, str, str]

ARGOCD_GROUP = "argoproj.io"


def _copy(obj: JsonObject) -> JsonObject:
    # JSON round trip: faster than copy.deepcopy for plain JSON, and callers never share our dicts.
    result: JsonObject = orjson.loads(orjson.dumps(obj))
    return result


def _merge_into(base: JsonObject, overlay: JsonObject) -> JsonObject:
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge_into(base[key], value)
        else:
            base[key] = value
    return base


class MemoryBackend:
    """An API server's behaviour, as far as the bundle applier relies on it, over a dict."""

    def __init__(
        self, *, argocd_sync_delay: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.argocd_sync_delay = argocd_sync_delay
        self.clock = clock
        self.objects: dict[Key, JsonObject] = {}
        self.records: dict[str, JsonObject] = {}
        # Errors to raise on the next write of an object (tests of failure paths).
        self.write_errors: dict[Key, AgentError] = {}
        # The cluster's RBAC for SubjectAccessReviews (a work's executor); None allows everything.
        self.access: Callable[[JsonObject], bool] | None = None
        self._sync_due: dict[Key, float] = {}
        self._counter = itertools.count(1)
        # (resourceVersion, copy) of objects read since they last changed: see `get`
        self._snapshots: dict[Key, tuple[str, JsonObject]] = {}

    async def prepare(self) -> None:
        return None

    async def review(self, spec: JsonObject) -> bool:
        return True if self.access is None else self.access(spec)

    async def close(self) -> None:
        return None

    async def resolve(self, group: str, version: str, kind: str) -> ResourceType:
        return ResourceType(guess_resource(kind), kind not in CLUSTER_SCOPED_KINDS)

    async def get(self, ref: ObjectRef) -> JsonObject | None:
        obj = self.objects.get(ref.key)
        if obj is None:
            return None
        self._maybe_sync(ref.key, obj)
        # A copy, as an API server's answer is; readers of an unchanged object (same
        # resourceVersion: every write changes it) share one, since nothing that reads an object
        # writes into it. The simulated fleet re-reads every object each minute: at 150,000 a
        # copy each was ~25 s of CPU per re-read.
        version = obj["metadata"]["resourceVersion"]
        snapshot = self._snapshots.get(ref.key)
        if snapshot is None or snapshot[0] != version:
            snapshot = self._snapshots[ref.key] = (version, _copy(obj))
        return snapshot[1]

    async def create(self, ref: ObjectRef, body: JsonObject) -> JsonObject:
        self._check_write(ref)
        if ref.key in self.objects:
            raise ConflictError(f"{ref.describe()} already exists")
        obj = _copy(body)
        self._stamp_new(obj)
        self.objects[ref.key] = obj
        self._spec_changed(ref.key, obj)
        return _copy(obj)

    async def replace(self, ref: ObjectRef, body: JsonObject) -> JsonObject:
        self._check_write(ref)
        live = self.objects.get(ref.key)
        if live is None:
            raise ClusterError(f"{ref.describe()} not found", status=404, reason="NotFound")
        live_meta = live["metadata"]
        if body["metadata"].get("resourceVersion") not in (None, live_meta["resourceVersion"]):
            raise ConflictError(f"{ref.describe()} was modified; re-read it and try again")
        obj = _copy(body)
        self._store_update(ref.key, live, obj)
        return _copy(obj)

    async def server_side_apply(
        self, ref: ObjectRef, body: JsonObject, *, field_manager: str, force: bool
    ) -> JsonObject:
        self._check_write(ref)
        live = self.objects.get(ref.key)
        if live is None:
            return await self.create(ref, body)
        # Close enough for a simulation: maps merge key by key (as SSA's granular maps do), our
        # values win; fields we stopped sending are not removed (SSA would drop them).
        obj = _merge_into(_copy({k: v for k, v in live.items() if k != "status"}), _copy(body))
        if "status" in live:
            obj["status"] = live["status"]
        self._store_update(ref.key, live, obj)
        return _copy(obj)

    async def delete(self, ref: ObjectRef, *, uid: str, propagation: str) -> DeleteState:
        self._check_write(ref)
        live = self.objects.get(ref.key)
        if live is None or live["metadata"]["uid"] != uid:
            return DeleteState.ABSENT
        del self.objects[ref.key]
        self._sync_due.pop(ref.key, None)
        self._snapshots.pop(ref.key, None)
        return DeleteState.GONE

    async def remove_label(self, ref: ObjectRef, label: str, *, uid: str) -> None:
        self._check_write(ref)
        live = self.objects.get(ref.key)
        if live is not None and live["metadata"]["uid"] == uid:
            (live["metadata"].get("labels") or {}).pop(label, None)
            live["metadata"]["resourceVersion"] = str(next(self._counter))

    async def list_records(self, consumer: str) -> list[JsonObject]:
        return [_copy(r) for r in self.records.values() if r["spec"].get("consumer") == consumer]

    async def put_record(self, obj: JsonObject) -> None:
        self.records[obj["metadata"]["name"]] = _copy(obj)

    async def delete_record(self, name: str) -> None:
        self.records.pop(name, None)

    def put(self, obj: JsonObject) -> JsonObject:
        """Create an object as someone other than the agent would (tests, pre-existing objects)."""
        group, _ = split_api_version(obj["apiVersion"])
        kind = obj["kind"]
        meta = obj["metadata"]
        namespace = meta.get("namespace", "") if kind not in CLUSTER_SCOPED_KINDS else ""
        key = (group, guess_resource(kind), namespace, meta["name"])
        self.objects.pop(key, None)
        stored = _copy(obj)
        self._stamp_new(stored)
        self.objects[key] = stored
        return _copy(stored)

    def write_status(self, key: Key, status: JsonObject) -> bool:
        """Replace an object's status as its controller would (Argo CD finding an Application
        degraded, with no change of spec); False when there is no such object."""
        obj = self.objects.get(key)
        if obj is None:
            return False
        obj["metadata"]["resourceVersion"] = str(next(self._counter))
        obj["status"] = _copy(status)
        return True

    def _stamp_new(self, obj: JsonObject) -> None:
        obj.setdefault("metadata", {}).update(
            uid=f"00000000-0000-4000-8000-{next(self._counter):012x}",
            resourceVersion=str(next(self._counter)),
            generation=1,
            creationTimestamp=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )

    def _check_write(self, ref: ObjectRef) -> None:
        error = self.write_errors.pop(ref.key, None)
        if error is not None:
            raise error

    def _store_update(self, key: Key, live: JsonObject, obj: JsonObject) -> None:
        live_meta = live["metadata"]
        meta = obj.setdefault("metadata", {})
        for field in ("uid", "creationTimestamp"):
            meta[field] = live_meta[field]
        changed = {k: v for k, v in obj.items() if k not in ("metadata", "status")} != {
            k: v for k, v in live.items() if k not in ("metadata", "status")
        }
        meta["generation"] = live_meta.get("generation", 1) + (1 if changed else 0)
        meta["resourceVersion"] = str(next(self._counter))
        if "status" in live:
            obj["status"] = live["status"]
        self.objects[key] = obj
        if changed:
            self._spec_changed(key, obj)

    def _spec_changed(self, key: Key, obj: JsonObject) -> None:
        if key[0] == ARGOCD_GROUP and obj.get("kind") == "Application":
            self._sync_due[key] = self.clock() + self.argocd_sync_delay
            obj["status"] = {"sync": {"status": "OutOfSync"}, "health": {"status": "Missing"}}

    def _maybe_sync(self, key: Key, obj: JsonObject) -> None:
        due = self._sync_due.get(key)
        if due is None or self.clock() < due:
            return
        del self._sync_due[key]
        obj["metadata"]["resourceVersion"] = str(next(self._counter))  # Argo CD's status write
        spec = obj.get("spec") or {}
        source = spec.get("source") or {}
        # A stable fake commit: the same spec always "syncs" to the same revision.
        revision = hashlib.sha1(orjson.dumps(spec, option=orjson.OPT_SORT_KEYS), usedforsecurity=False)
        obj["status"] = {
            "sync": {
                "status": "Synced",
                "revision": revision.hexdigest(),
                "comparedTo": {"source": source, "destination": spec.get("destination") or {}},
            },
            "health": {"status": "Healthy"},
            "operationState": {"phase": "Succeeded", "message": "successfully synced (all tasks run)"},
        }


class MemoryApplier(BundleApplier):
    """`applier.Applier` over a `MemoryBackend`; pass the same backend to simulate a restart."""

    backend: MemoryBackend

    def __init__(
        self,
        consumer: str,
        *,
        backend: MemoryBackend | None = None,
        settings: ApplierSettings | None = None,
        argocd_sync_delay: float = 1.0,
    ) -> None:
        super().__init__(
            backend or MemoryBackend(argocd_sync_delay=argocd_sync_delay),
            consumer,
            settings or ApplierSettings(delete_wait=0.0),
        )

    def applied_record_object(self, resource_id: str) -> JsonObject | None:
        """The stored record as the cluster would hold it (for tests)."""
        return self.backend.records.get(records.record_name(resource_id))
