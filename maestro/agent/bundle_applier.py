"""How a bundle is applied, pruned and deleted — written once, over a small cluster `Backend`.

`kube.KubeApplier` and `memory.MemoryApplier` are this `BundleApplier` over their `Backend`, so a
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
- Executor. A bundle that names an executor ServiceAccount has each manifest checked with
  SubjectAccessReviews before it is written (see `executor`); a refused manifest fails alone.
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
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from maestro.agent import executor, objects, plans
from maestro.agent import records as records_mod
from maestro.agent.applier import ApplyResult, DeleteResult, ManifestOutcome
from maestro.agent.backend import Backend, JsonObject
from maestro.agent.errors import AgentError, ManifestError
from maestro.agent.manifests import (
    DEFAULT_FIELD_MANAGER,
    READ_ONLY,
    SERVER_SIDE_APPLY,
    STRATEGIES,
    DeleteOption,
    UpdateStrategy,
    parse_delete_option,
    parse_manifest_configs,
)
from maestro.agent.records import AppliedRecord, AppliedResource

log = logging.getLogger(__name__)

# Namespaces and CRDs first, so the objects in them can be created in the same pass.
_FIRST_KINDS = frozenset({"Namespace", "CustomResourceDefinition"})


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
            return [await objects.read(self.backend, record.manifests[0].ref)]
        return list(await asyncio.gather(*(objects.read(self.backend, m.ref) for m in record.manifests)))

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

        default = UpdateStrategy(self.settings.default_strategy, field_manager=self.settings.field_manager)
        planned, failures = await plans.plan_manifests(self.backend, raw_manifests, configs, default)
        if config_error is not None:
            failures += [
                ManifestOutcome(p.meta, False, f"{p.meta.describe()}: {config_error}") for p in planned
            ]
            planned = []
        try:
            work_executor = executor.parse(bundle)
        except ManifestError as exc:
            # Whose permissions to check is unknown: writing anything could exceed them.
            failures += [ManifestOutcome(p.meta, False, f"{p.meta.describe()}: {exc}") for p in planned]
            planned, work_executor = [], None
        if work_executor is not None:
            planned, refused = await plans.authorized(self.backend, planned, work_executor, delete_option)
            failures += refused
        # A manifest we cannot identify might be one we applied before: pruning would delete it.
        identified = all(f.meta.resource for f in failures)
        old_owned = {r.key: r for r in old.applied_resources} if old else {}
        writable = [p for p in planned if p.strategy.type != READ_ONLY]
        fresh = [AppliedResource.of(p.meta.ref) for p in writable if p.meta.key not in old_owned]
        if old is None or fresh:
            pre = AppliedRecord(
                resource_id=resource_id,
                version=old.version if old else 0,
                consumer=self.consumer,
                manifests=old.manifests if old else tuple(p.meta for p in planned),
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
                outcomes = [
                    ManifestOutcome(p.meta, False, message, strategy=p.strategy.type) for p in planned
                ]
                return ApplyResult(
                    resource_id, version, _ordered([*outcomes, *failures]), old, errors=(message,)
                )

        outcomes = [*failures]
        for plan in sorted(planned, key=lambda p: (p.meta.kind not in _FIRST_KINDS, p.meta.ordinal)):
            old_entry = old_owned.get(plan.meta.key)
            outcomes.append(await objects.apply(self.backend, resource_id, plan, old_entry))
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
                        await objects.unmark(self.backend, resource_id, resource)
                        orphaned.append(resource)
                    else:
                        await objects.delete_owned(self.backend, resource_id, resource, "Background")
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
                    owned[key] = AppliedResource.of(outcome.meta.ref, objects.uid(outcome.live))
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
            manifests=tuple(sorted((p.meta for p in planned), key=lambda m: m.ordinal)),
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
                    await objects.unmark(self.backend, resource_id, resource)
                    orphaned.append(resource)
                elif going := await objects.delete_owned(self.backend, resource_id, resource, "Foreground"):
                    waiting.append(going)
                else:
                    deleted.append(resource)
            except AgentError as exc:
                errors.append(f"could not delete {resource.describe()}: {exc}")
                failed.append(resource)
        waiting, gone = await objects.wait_gone(
            self.backend, waiting, self.settings.delete_wait, self.settings.delete_poll
        )
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


def _ordered(outcomes: Sequence[ManifestOutcome]) -> tuple[ManifestOutcome, ...]:
    return tuple(sorted(outcomes, key=lambda o: o.meta.ordinal))
