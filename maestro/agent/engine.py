"""How a bundle is applied, pruned and deleted — written once, over a small cluster `Backend`.

`kube.KubeApplier` and `memory.MemoryApplier` are this `BundleApplier` over their backend, so a
simulated agent in a benchmark runs exactly the real agent's logic. The rules:

- Ownership. An object is the bundle's own when the agent created it, or found it carrying the
  bundle's marker label (`manifests.MARKER_LABEL`). Own objects get the marker, are listed (with
  their uid) in the bundle's applied record, and are deleted with the bundle. An object that
  existed before without the marker is still written (SSA/Update) but never labelled, recorded or
  deleted: the agent does not take over what someone else created. (OCM's work agent instead adds
  an owner reference and deletes the object when it is the only owner.) A delete always carries
  the recorded uid as a precondition, so an object someone re-created under the same name survives.
- Record first. Before writing an object the bundle did not own yet, the record lists it (uid
  unknown, version not yet claimed), so a crash between the write and the record cannot leak it.
  The record claims the new version only when every manifest applied.
- Update strategies: ServerSideApply (the default here, as the design asks; OCM's default is
  Update), Update (create, or replace the whole object, keeping live labels, annotations,
  finalizers, owner references and status), CreateOnly (create if absent, never touch again),
  ReadOnly (only read, for feedback). `status` is never written.
- Prune. An update that drops a manifest deletes its object (Background propagation) unless the
  bundle's deleteOption orphans it; nothing is pruned while a manifest cannot be identified.
- Delete. Foreground deletes every own object with Foreground propagation and waits up to
  `delete_wait` for them to be gone, reporting what remains; Orphan removes only the marker;
  SelectivelyOrphan orphans the listed objects and deletes the rest. Once nothing remains, the
  record goes. (Foreground waits for the garbage collector: an object of a custom resource type
  the collector has not seen yet can take until its next resync, about 30 s.)

Calls for one bundle are serialized; different bundles proceed concurrently.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kubeio.discovery import ResourceType
from maestro.agent import records as records_mod
from maestro.agent.applier import ApplyResult, DeleteResult, ManifestOutcome
from maestro.agent.errors import AgentError, ConflictError, ManifestError
from maestro.agent.manifests import (
    CREATE_ONLY,
    DEFAULT_FIELD_MANAGER,
    MARKER_LABEL,
    READ_ONLY,
    SERVER_SIDE_APPLY,
    STRATEGIES,
    UPDATE,
    DeleteOption,
    ManifestConfig,
    ManifestMeta,
    ObjectRef,
    ParsedManifest,
    UpdateStrategy,
    desired_body,
    find_config,
    has_marker,
    marker_value,
    parse_delete_option,
    parse_manifest,
    parse_manifest_configs,
    split_api_version,
)
from maestro.agent.records import AppliedRecord, AppliedResource

JsonObject = dict[str, Any]

log = logging.getLogger(__name__)

# Namespaces and CRDs first, so the objects in them can be created in the same pass.
_FIRST_KINDS = frozenset({"Namespace", "CustomResourceDefinition"})
_UPDATE_ATTEMPTS = 3


class DeleteState(enum.Enum):
    GONE = "gone"  # deleted at once
    DELETING = "deleting"  # still there: finalizers or Foreground dependents first
    ABSENT = "absent"  # nothing to delete, or another object (uid differs) now has the name


class Backend(Protocol):
    """The few cluster operations the engine needs; `kube.KubeBackend` and `memory.MemoryBackend`.

    Reads return None for an absent object; writes return the object as stored. Errors are
    `errors.AgentError`s: `ConflictError` (exists / changed), `UnknownKindError`, `ClusterError`,
    `ClusterUnavailableError`.
    """

    async def prepare(self) -> None: ...

    async def close(self) -> None: ...

    async def resolve(self, group: str, version: str, kind: str) -> ResourceType: ...

    async def get(self, ref: ObjectRef) -> JsonObject | None: ...

    async def create(self, ref: ObjectRef, body: JsonObject) -> JsonObject: ...

    async def replace(self, ref: ObjectRef, body: JsonObject) -> JsonObject: ...

    async def server_side_apply(
        self, ref: ObjectRef, body: JsonObject, *, field_manager: str, force: bool
    ) -> JsonObject: ...

    async def delete(self, ref: ObjectRef, *, uid: str, propagation: str) -> DeleteState:
        """Delete the object if it still has `uid` (a precondition, so never someone else's)."""
        ...

    async def remove_label(self, ref: ObjectRef, label: str, *, uid: str) -> None: ...

    async def list_records(self, consumer: str) -> list[JsonObject]: ...

    async def put_record(self, obj: JsonObject) -> None: ...

    async def delete_record(self, name: str) -> None: ...


@dataclass(frozen=True, slots=True)
class ApplierSettings:
    default_strategy: str = SERVER_SIDE_APPLY
    field_manager: str = DEFAULT_FIELD_MANAGER
    # How long one `delete` call waits for Foreground deletes to finish before reporting progress.
    delete_wait: float = 10.0
    delete_poll: float = 0.2

    def __post_init__(self) -> None:
        if self.default_strategy not in STRATEGIES:
            raise ValueError(f"default_strategy must be one of {', '.join(STRATEGIES)}")


@dataclass(frozen=True, slots=True)
class _Plan:
    meta: ManifestMeta
    manifest: ParsedManifest
    strategy: UpdateStrategy


class BundleApplier:
    """The `applier.Applier` implementation, over a backend."""

    def __init__(self, backend: Backend, consumer: str, settings: ApplierSettings | None = None) -> None:
        self.backend = backend
        self.consumer = consumer
        self.settings = settings or ApplierSettings()
        self._records: dict[str, AppliedRecord] = {}
        self._loaded = False
        self._locks: dict[str, asyncio.Lock] = {}

    async def start(self) -> None:
        await self.backend.prepare()

    async def close(self) -> None:
        await self.backend.close()

    async def load_records(self) -> dict[str, AppliedRecord]:
        loaded: dict[str, AppliedRecord] = {}
        for obj in await self.backend.list_records(self.consumer):
            try:
                record = records_mod.from_object(obj)
            except (KeyError, ValueError, TypeError) as exc:
                name = (obj.get("metadata") or {}).get("name")
                log.warning("skipping malformed applied record %s: %r", name, exc)
                continue
            if record.consumer == self.consumer:
                loaded[record.resource_id] = record
        self._records = loaded
        self._loaded = True
        return dict(loaded)

    def record(self, resource_id: str) -> AppliedRecord | None:
        return self._records.get(resource_id)

    def records(self) -> list[AppliedRecord]:
        return list(self._records.values())

    async def apply(self, resource_id: str, version: int, bundle: Mapping[str, Any]) -> ApplyResult:
        async with self._lock(resource_id):
            await self._ensure_loaded()
            return await self._apply(resource_id, version, bundle)

    async def delete(
        self, resource_id: str, bundle_or_record: Mapping[str, Any] | AppliedRecord | None = None
    ) -> DeleteResult:
        async with self._lock(resource_id):
            await self._ensure_loaded()
            result = await self._delete(resource_id, bundle_or_record)
        if result.done:
            self._locks.pop(resource_id, None)
        return result

    async def observe(self, resource_id: str) -> list[JsonObject | None]:
        record = self._records.get(resource_id)
        if record is None:
            return []
        if len(record.manifests) == 1:  # the usual work: read directly (a gather is a task per read)
            return [await self.backend.get(record.manifests[0].ref)]
        return list(await asyncio.gather(*(self.backend.get(m.ref) for m in record.manifests)))

    # -- apply ---------------------------------------------------------------------------------

    async def _apply(self, resource_id: str, version: int, bundle: Mapping[str, Any]) -> ApplyResult:
        old = self._records.get(resource_id)
        if old is not None and version < old.version:
            return ApplyResult(resource_id, version, (), old, stale=True)
        errors: list[str] = []
        raw_configs = bundle.get("manifestConfigs") or []
        config_error: str | None = None
        try:
            configs = parse_manifest_configs(raw_configs)
        except ManifestError as exc:
            # Without the configs we cannot tell which manifests must not be written (ReadOnly).
            configs, raw_configs, config_error = (), [], str(exc)
        try:
            delete_option: DeleteOption | None = parse_delete_option(bundle.get("deleteOption"))
        except ManifestError as exc:
            delete_option = None
            errors.append(f"{exc} (nothing dropped from the bundle is removed until it is fixed)")
        raw_manifests = bundle.get("manifests")
        if not isinstance(raw_manifests, list):
            errors.append(f"manifests must be a list, got {type(raw_manifests).__name__}")
            raw_manifests = []

        plans, failures = await self._plan(raw_manifests, configs)
        if config_error is not None:
            failures += [
                ManifestOutcome(p.meta, False, f"{p.meta.describe()}: {config_error}") for p in plans
            ]
            plans = []
        # A manifest we cannot identify might be one we applied before: pruning would delete it.
        identified = all(f.meta.resource for f in failures)
        old_owned = {r.key: r for r in old.applied_resources} if old else {}
        writable = [p for p in plans if p.strategy.type != READ_ONLY]
        fresh = [AppliedResource.of(p.meta.ref) for p in writable if p.meta.key not in old_owned]
        if old is None or fresh:
            pre = AppliedRecord(
                resource_id=resource_id,
                version=old.version if old else 0,
                consumer=self.consumer,
                manifests=old.manifests if old else tuple(p.meta for p in plans),
                manifest_configs=old.manifest_configs if old else tuple(raw_configs),
                delete_option=old.delete_option if old else _raw_option(bundle, delete_option),
                applied_resources=(*(old.applied_resources if old else ()), *fresh),
            )
            try:
                await self._write_record(pre)
            except AgentError as exc:
                message = (
                    f"could not record what bundle {resource_id} will create, so nothing was written: {exc}"
                )
                outcomes = [ManifestOutcome(p.meta, False, message, strategy=p.strategy.type) for p in plans]
                return ApplyResult(
                    resource_id, version, _ordered([*outcomes, *failures]), old, errors=(message,)
                )

        outcomes = [*failures]
        for plan in sorted(plans, key=lambda p: (p.meta.kind not in _FIRST_KINDS, p.meta.ordinal)):
            old_entry = old_owned.get(plan.meta.key)
            outcomes.append(await self._apply_one(resource_id, plan, old_entry))
        kept_keys = {o.meta.key for o in outcomes if o.meta.resource}

        pruned: list[AppliedResource] = []
        orphaned: list[AppliedResource] = []
        leftovers: list[AppliedResource] = []
        dropped = [r for r in (old.applied_resources if old else ()) if r.key not in kept_keys]
        if dropped and (delete_option is None or not identified):
            errors.append(
                f"not removing {len(dropped)} objects dropped from the bundle while some manifests "
                "cannot be identified or the deleteOption is invalid"
            )
            leftovers = dropped
        elif dropped and delete_option is not None:
            for resource in dropped:
                try:
                    if delete_option.orphans(resource.ref):
                        await self._unmark(resource_id, resource)
                        orphaned.append(resource)
                    else:
                        await self._delete_owned(resource_id, resource, "Background")
                        pruned.append(resource)
                except AgentError as exc:
                    errors.append(f"could not remove {resource.describe()}, dropped from the bundle: {exc}")
                    leftovers.append(resource)

        fresh_keys = {r.key for r in fresh}
        owned: dict[tuple[str, str, str, str], AppliedResource] = {}
        for outcome in _ordered(outcomes):
            key = outcome.meta.key
            if not outcome.meta.resource or key in owned:
                continue
            if outcome.applied:
                if outcome.owned:
                    owned[key] = AppliedResource.of(outcome.meta.ref, _uid(outcome.live))
            elif key in old_owned:
                owned[key] = old_owned[key]
            elif key in fresh_keys:
                # Listed before the write failed; the object may exist now: keep tracking it.
                owned[key] = AppliedResource.of(outcome.meta.ref)
        all_applied = not errors and all(o.applied for o in outcomes)
        record = AppliedRecord(
            resource_id=resource_id,
            version=version if all_applied else (old.version if old else 0),
            consumer=self.consumer,
            manifests=tuple(sorted((p.meta for p in plans), key=lambda m: m.ordinal)),
            manifest_configs=tuple(raw_configs),
            delete_option=_raw_option(bundle, delete_option)
            if delete_option is not None
            else (old.delete_option if old else None),
            applied_resources=(*owned.values(), *leftovers),
        )
        if record != self._records.get(resource_id):  # a re-apply of the same bundle writes nothing
            try:
                await self._write_record(record)
            except AgentError as exc:
                errors.append(f"could not update the applied record of bundle {resource_id}: {exc}")
        return ApplyResult(
            resource_id=resource_id,
            version=version,
            outcomes=_ordered(outcomes),
            record=self._records.get(resource_id),
            pruned=tuple(pruned),
            orphaned=tuple(orphaned),
            errors=tuple(errors),
        )

    async def _plan(
        self, raw_manifests: Sequence[Any], configs: Sequence[ManifestConfig]
    ) -> tuple[list[_Plan], list[ManifestOutcome]]:
        """Parse and resolve every manifest; a failure is an outcome (its meta as far as known)."""
        default = UpdateStrategy(self.settings.default_strategy, field_manager=self.settings.field_manager)
        plans: list[_Plan] = []
        failures: list[ManifestOutcome] = []
        seen: dict[tuple[str, str, str, str], int] = {}
        for ordinal, raw in enumerate(raw_manifests):
            try:
                parsed = parse_manifest(ordinal, raw)
            except ManifestError as exc:
                failures.append(ManifestOutcome(_partial_meta(ordinal, raw), False, str(exc)))
                continue
            try:
                rtype = await self.backend.resolve(parsed.group, parsed.version, parsed.kind)
            except AgentError as exc:
                failures.append(ManifestOutcome(parsed.meta(), False, f"{parsed.meta().describe()}: {exc}"))
                continue
            meta = parsed.meta(rtype.resource, namespaced=rtype.namespaced)
            if rtype.namespaced and not parsed.namespace:
                message = (
                    f"{meta.describe()}: metadata.namespace is required for the namespaced kind {parsed.kind}"
                )
                failures.append(ManifestOutcome(dataclasses.replace(meta, resource=""), False, message))
                continue
            if meta.key in seen:
                message = f"{meta.describe()}: the same object as manifest {seen[meta.key]}"
                failures.append(ManifestOutcome(meta, False, message))
                continue
            seen[meta.key] = ordinal
            config = find_config(configs, meta)
            if config is not None and config.error:
                # Identified (so what it names is kept), but not written with a config we cannot read.
                failures.append(ManifestOutcome(meta, False, f"{meta.describe()}: {config.error}"))
                continue
            strategy = config.strategy if config is not None and config.strategy else default
            plans.append(_Plan(meta, parsed, strategy))
        return plans, failures

    async def _apply_one(
        self, resource_id: str, plan: _Plan, old_entry: AppliedResource | None
    ) -> ManifestOutcome:
        meta, strategy = plan.meta, plan.strategy
        try:
            return await self._write(resource_id, plan, old_entry)
        except AgentError as exc:
            return ManifestOutcome(meta, False, f"{meta.describe()}: {exc}", strategy=strategy.type)
        except Exception as exc:  # one manifest's surprise must not stop the bundle or the agent
            log.exception("applying %s of bundle %s failed", meta.describe(), resource_id)
            return ManifestOutcome(
                meta, False, f"{meta.describe()}: {type(exc).__name__}: {exc}", strategy=strategy.type
            )

    async def _write(
        self, resource_id: str, plan: _Plan, old_entry: AppliedResource | None
    ) -> ManifestOutcome:
        meta, strategy = plan.meta, plan.strategy
        ref = meta.ref
        live: JsonObject | None = None
        if strategy.type == READ_ONLY:
            live = await self.backend.get(ref)
            return ManifestOutcome(meta, True, live=live, strategy=READ_ONLY)
        fetched = strategy.type != SERVER_SIDE_APPLY or old_entry is None
        if fetched:
            live = await self.backend.get(ref)
        ours = not fetched or live is None or has_marker(live, resource_id)
        if not ours and old_entry is not None and old_entry.uid:
            ours = _uid(live) == old_entry.uid
        body = desired_body(plan.manifest, meta, marker_value(resource_id) if ours else None)
        if strategy.type == SERVER_SIDE_APPLY:
            stored = await self.backend.server_side_apply(
                ref, body, field_manager=strategy.field_manager, force=strategy.force
            )
        elif strategy.type == UPDATE:
            stored = await self._update(ref, body, live)
        elif strategy.type == CREATE_ONLY:
            if live is None:
                try:
                    stored = await self.backend.create(ref, body)
                except ConflictError:
                    # Created by someone else between our read and our write: theirs, not ours.
                    stored = await self.backend.get(ref) or {}
                    ours = has_marker(stored, resource_id)
            else:
                stored = live
        else:  # pragma: no cover - strategies are validated when parsed
            raise ManifestError(f"unknown update strategy {strategy.type!r}")
        return ManifestOutcome(meta, True, live=stored, strategy=strategy.type, owned=ours)

    async def _update(self, ref: ObjectRef, body: JsonObject, live: JsonObject | None) -> JsonObject:
        for _ in range(_UPDATE_ATTEMPTS):
            if live is None:
                try:
                    return await self.backend.create(ref, body)
                except ConflictError:
                    live = await self.backend.get(ref)
                    continue
            try:
                return await self.backend.replace(ref, _merged_for_update(body, live))
            except ConflictError:
                live = await self.backend.get(ref)
        raise ConflictError(f"the object kept changing during {_UPDATE_ATTEMPTS} update attempts")

    # -- delete --------------------------------------------------------------------------------

    async def _delete(
        self, resource_id: str, source: Mapping[str, Any] | AppliedRecord | None
    ) -> DeleteResult:
        record = self._records.get(resource_id)
        if record is None:
            return DeleteResult(resource_id, done=True)
        try:
            option = _delete_option_of(source, record)
        except ManifestError as exc:
            # Deleting what should have been kept cannot be undone: do nothing until it is fixed.
            return DeleteResult(resource_id, done=False, errors=(str(exc),), version=record.version)
        deleted: list[AppliedResource] = []
        orphaned: list[AppliedResource] = []
        waiting: list[AppliedResource] = []
        failed: list[AppliedResource] = []
        errors: list[str] = []
        for resource in record.applied_resources:
            try:
                if option.orphans(resource.ref):
                    await self._unmark(resource_id, resource)
                    orphaned.append(resource)
                elif going := await self._delete_owned(resource_id, resource, "Foreground"):
                    waiting.append(going)
                else:
                    deleted.append(resource)
            except AgentError as exc:
                errors.append(f"could not delete {resource.describe()}: {exc}")
                failed.append(resource)
        waiting, gone = await self._wait_gone(waiting)
        deleted.extend(gone)
        remaining = [*waiting, *failed]
        if remaining:
            if len(remaining) < len(record.applied_resources):
                # Forget what is already gone, so a restart does not look for it again.
                smaller = dataclasses.replace(record, applied_resources=tuple(remaining))
                try:
                    await self._write_record(smaller)
                except AgentError as exc:
                    errors.append(f"could not update the applied record: {exc}")
            return DeleteResult(
                resource_id,
                done=False,
                deleted=tuple(deleted),
                orphaned=tuple(orphaned),
                remaining=tuple(remaining),
                errors=tuple(errors),
                version=record.version,
            )
        try:
            await self.backend.delete_record(records_mod.record_name(resource_id))
        except AgentError as exc:
            errors.append(f"could not remove the applied record: {exc}")
            return DeleteResult(
                resource_id, False, tuple(deleted), tuple(orphaned), (), tuple(errors), record.version
            )
        self._records.pop(resource_id, None)
        return DeleteResult(
            resource_id, True, tuple(deleted), tuple(orphaned), (), tuple(errors), record.version
        )

    async def _delete_owned(
        self, resource_id: str, resource: AppliedResource, propagation: str
    ) -> AppliedResource | None:
        """Delete one recorded object if it is still ours; returns it (uid known) while it goes."""
        uid = resource.uid
        if not uid:
            # Recorded before its write was confirmed: ours only if it carries our marker.
            live = await self.backend.get(resource.ref)
            if live is None or not has_marker(live, resource_id):
                return None
            uid = _uid(live)
        state = await self.backend.delete(resource.ref, uid=uid, propagation=propagation)
        return dataclasses.replace(resource, uid=uid) if state is DeleteState.DELETING else None

    async def _wait_gone(
        self, waiting: list[AppliedResource]
    ) -> tuple[list[AppliedResource], list[AppliedResource]]:
        gone: list[AppliedResource] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.delete_wait
        while waiting and loop.time() < deadline:
            await asyncio.sleep(self.settings.delete_poll)
            still: list[AppliedResource] = []
            for resource in waiting:
                live = await self.backend.get(resource.ref)
                if live is not None and _uid(live) == resource.uid:
                    still.append(resource)
                else:
                    gone.append(resource)
            waiting = still
        return waiting, gone

    async def _unmark(self, resource_id: str, resource: AppliedResource) -> None:
        """Orphaning leaves the object but takes our marker off: it is no longer the bundle's."""
        live = await self.backend.get(resource.ref)
        if live is None or not has_marker(live, resource_id):
            return
        if resource.uid and _uid(live) != resource.uid:
            return
        await self.backend.remove_label(resource.ref, MARKER_LABEL, uid=_uid(live))

    # -- helpers -------------------------------------------------------------------------------

    async def _write_record(self, record: AppliedRecord) -> None:
        await self.backend.put_record(records_mod.to_object(record))
        self._records[record.resource_id] = record

    async def _ensure_loaded(self) -> None:
        if not self._loaded:
            await self.load_records()

    def _lock(self, resource_id: str) -> asyncio.Lock:
        lock = self._locks.get(resource_id)
        if lock is None:
            lock = self._locks[resource_id] = asyncio.Lock()
        return lock


def _merged_for_update(body: JsonObject, live: JsonObject) -> JsonObject:
    """A full replacement that keeps what others legitimately add to an object we update."""
    live_meta = live.get("metadata") or {}
    meta = dict(body.get("metadata") or {})
    for key in ("labels", "annotations"):
        merged = {**(live_meta.get(key) or {}), **(meta.get(key) or {})}
        if merged:
            meta[key] = merged
    for key in ("finalizers", "ownerReferences"):
        if key not in meta and key in live_meta:
            meta[key] = live_meta[key]
    meta["resourceVersion"] = live_meta.get("resourceVersion")
    out = {**body, "metadata": meta}
    if "status" in live:
        # Without a status subresource a PUT would wipe what the object's controller reported.
        out["status"] = live["status"]
    return out


def _delete_option_of(
    source: Mapping[str, Any] | AppliedRecord | None, record: AppliedRecord
) -> DeleteOption:
    if isinstance(source, AppliedRecord):
        return parse_delete_option(source.delete_option)
    if isinstance(source, Mapping) and source.get("deleteOption"):
        return parse_delete_option(source["deleteOption"])
    return parse_delete_option(record.delete_option)


def _raw_option(bundle: Mapping[str, Any], parsed: DeleteOption | None) -> JsonObject | None:
    raw = bundle.get("deleteOption")
    return dict(raw) if parsed is not None and isinstance(raw, Mapping) and raw else None


def _partial_meta(ordinal: int, raw: Any) -> ManifestMeta:
    if not isinstance(raw, Mapping):
        return ManifestMeta(ordinal, "", "", "", "", "", "")
    group, version = (
        split_api_version(raw["apiVersion"]) if isinstance(raw.get("apiVersion"), str) else ("", "")
    )
    metadata = raw.get("metadata")
    if not isinstance(metadata, Mapping):
        metadata = {}
    return ManifestMeta(
        ordinal,
        group,
        version,
        str(raw.get("kind") or ""),
        "",
        str(metadata.get("namespace") or ""),
        str(metadata.get("name") or ""),
    )


def _ordered(outcomes: Sequence[ManifestOutcome]) -> tuple[ManifestOutcome, ...]:
    return tuple(sorted(outcomes, key=lambda o: o.meta.ordinal))


def _uid(obj: Mapping[str, Any] | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("uid") or "")
