"""The Application Propagation controller: ApplicationSets on the hub -> works in Maestro + hub mirrors.

``controllers.operator`` builds one ``PropagationController`` and hands it to ``register``, which
wires it into kopf:

- a **daemon per opted-in ApplicationSet** reconciles it at start, whenever it is woken, and every
  ``resync_seconds`` (level-based: the pass compares the plan with what Maestro and the hub hold
  now, so a missed event, a restart or a manual edit is repaired on the next pass);
- **watch events** wake the daemons: an ApplicationSet's own spec or labels changing, any cluster
  Secret of the inventory changing (every daemon), a cluster decision resource changing (the
  daemons of its namespace);
- a **deletion handler** holds kopf's finalizer until every work of the ApplicationSet is gone from
  Maestro (deleted on its cluster), then deletes the hub mirrors;
- a **sweep** (started by the operator) deletes works whose ApplicationSet is gone or no longer
  opted in.

One pass (``reconcile``) reads the inventory and generator inputs from the hub, runs the pure
pipeline (``generators.generate`` -> ``plan.plan_application_set`` -> ``diff.diff`` ->
``rollout.plan_rollout``), server-side-applies the hub mirrors, publishes creates/updates/deletes
through ``MaestroClient`` and records the ApplicationSet's facts in the ``StatusBook`` (the status
controller writes the ApplicationSet's status from them). A problem of the ApplicationSet's own
making (unknown generator, template error, unregistered cluster...) becomes a condition and a
Warning event, never an exception: other ApplicationSets and running apps are untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import grpc
import kopf
import orjson

from controllers import contract, hub, periodic
from controllers.propagation import diff, errors, generators, inventory, plan, rollout
from controllers.status import aggregate, book
from maestro.api import bundles, queries
from maestro.client import MaestroClient
from maestro.wire import stubs

log = logging.getLogger(__name__)

AppSetKey = tuple[str, str]
_T = TypeVar("_T")
_R = TypeVar("_R")
#: ``(type, reason, message)`` -> a Kubernetes event on the ApplicationSet
Report = Callable[[str, str, str], None]

#: gRPC codes after which the same call may succeed later (the server restarts, is overloaded...)
TRANSIENT_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
    }
)
_EVENT_MESSAGE_LIMIT = 1000


@dataclasses.dataclass(frozen=True)
class PropagationSettings:
    #: where the hub's Argo CD cluster Secrets (the inventory) live, as in an Argo CD install
    inventory_namespace: str = "argocd"
    #: seconds between two passes over an ApplicationSet when nothing wakes it
    resync_seconds: float = 60.0
    #: seconds before a pass that failed for a transient reason (Maestro or the hub away) is retried
    retry_seconds: float = 5.0
    #: passes planning and sending their works at once, over all ApplicationSets (a pass gives its
    #: place up once its works are out: writing its mirrors waits on the hub and on the clusters)
    concurrency: int = 4
    #: passes under way at once, those still writing their mirrors included (each holds its plan's
    #: rendered documents until it ends)
    passes_under_way: int = 50
    #: targets whose work was sent and whose mirror is not yet written, over all ApplicationSets:
    #: how far the works may run ahead of the hub (at 3,000 x 50, unbounded, they flooded the
    #: status path the mirrors wait on while the hub API server sat idle)
    targets_in_flight: int = 8000
    #: writes in flight at once within one pass (hub mirrors, then Maestro publishes, then deletes)
    write_concurrency: int = 32
    #: seconds a mirror waits, once its work went out, for the status its cluster reports for that
    #: work, so that the mirror is written with it (one hub write instead of a write and a patch)
    mirror_status_seconds: float = 10.0
    field_manager: str = "fleetplane-propagation"
    #: ``plural.version.group`` of cluster decision resources whose changes wake the daemons of their
    #: namespace (others are picked up by the periodic pass)
    decision_resources: tuple[str, ...] = ("placementdecisions.v1beta1.cluster.open-cluster-management.io",)


class MirrorListener(Protocol):
    """The status side of the hub mirrors: what status a mirror should carry when it is written,
    and which mirrors were written (with what status) or deleted, so the status writer knows what
    each holds."""

    def status_of(self, namespace: str, name: str) -> Mapping[str, Any] | None: ...

    def expect(self, namespace: str, name: str, newer_than: int) -> asyncio.Future[None]: ...

    def release(self, namespace: str, names: Iterable[str]) -> None: ...

    def mirror_written(self, namespace: str, name: str, status: Mapping[str, Any] | None) -> None: ...

    def mirrors_seen(self, namespace: str, names: Iterable[str]) -> None: ...

    def mirror_deleted(self, namespace: str, name: str) -> None: ...


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What one pass did."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    mirrors_applied: int = 0
    mirrors_deleted: int = 0
    #: messages for the ApplicationSet's author: generation, planning and publishing errors
    problems: tuple[str, ...] = ()
    #: why some changes were held back (applicationsSync policy, rollout, pending deletions)
    notes: tuple[str, ...] = ()
    generation_failed: bool = False
    rolling: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated or self.deleted or self.mirrors_deleted)

    def describe(self) -> str:
        return (
            f"works: {self.created} created, {self.updated} updated, {self.deleted} deleted; "
            f"mirrors: {self.mirrors_applied} applied, {self.mirrors_deleted} deleted"
        )


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, grpc.aio.AioRpcError):
        return exc.code() in TRANSIENT_CODES
    if isinstance(exc, hub.ClusterError):
        return exc.status == 0 or exc.status == 429 or exc.status >= 500
    return isinstance(exc, hub.ClusterUnavailableError | ConnectionError | TimeoutError)


def owner_labels(namespace: str, name: str) -> dict[str, str]:
    """The labels ``plan`` puts on an ApplicationSet's works and mirrors (values may be hashed)."""
    return {
        contract.LABEL_APPSET_NAMESPACE: plan.label_value(namespace),
        contract.LABEL_APPSET_NAME: plan.label_value(name),
    }


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, str]:
    """The annotations of a Kubernetes object."""
    return _work_annotations(obj.get("metadata") or {})


def _work_annotations(meta: Mapping[str, Any]) -> Mapping[str, str]:
    """The annotations in an ObjectMeta (a work's metadata is one, without an enclosing object)."""
    return meta.get("annotations") or {}


class PropagationController:
    def __init__(
        self,
        hub_client: hub.HubClient,
        maestro: MaestroClient,
        status_book: book.StatusBook,
        listener: MirrorListener,
        settings: PropagationSettings = PropagationSettings(),
        options: plan.PlanOptions | None = None,
    ) -> None:
        options = options or plan.PlanOptions()
        if maestro.source != options.source:
            raise ValueError(
                f"the Maestro client publishes as {maestro.source!r} but plans use source "
                f"{options.source!r}; they must be the same (work ids depend on it)"
            )
        self.hub = hub_client
        self.maestro = maestro
        self.book = status_book
        self.listener = listener
        self.settings = settings
        self.options = options
        self._semaphore = asyncio.Semaphore(settings.concurrency)
        self._under_way = asyncio.Semaphore(max(settings.passes_under_way, settings.concurrency))
        self._in_flight = asyncio.Semaphore(settings.targets_in_flight)
        self._locks: dict[AppSetKey, asyncio.Lock] = {}
        self._wakeups: dict[AppSetKey, asyncio.Event] = {}
        self._rolling: set[AppSetKey] = set()
        self._seen: dict[AppSetKey, tuple[Any, ...]] = {}
        self._reported: dict[AppSetKey, str] = {}
        self._plans: dict[AppSetKey, _CachedPlan] = {}
        #: Applications whose mirror the hub did not take, per ApplicationSet (last pass): the name is
        #: another Application's, or the hub refuses it
        self._mirrors_refused: dict[AppSetKey, set[str]] = {}
        self._inventory_generation = 0
        self._inventory_cache: tuple[int, float, inventory.Inventory] | None = None

    # --- triggers ----------------------------------------------------------------------------------

    def _lock(self, key: AppSetKey) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    def wake(self, namespace: str, name: str) -> None:
        event = self._wakeups.get((namespace, name))
        if event is not None:
            event.set()

    def wake_all(self, namespace: str | None = None) -> None:
        for (ns, _), event in self._wakeups.items():
            if namespace is None or ns == namespace:
                event.set()

    def wake_if_rolling(self, key: AppSetKey) -> None:
        """A status changed: an ApplicationSet in a RollingSync may now start its next step."""
        if key in self._rolling:
            self.wake(*key)

    def inventory_changed(self) -> None:
        self._inventory_generation += 1
        self.wake_all()

    def appset_seen(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """Every watch event of an ApplicationSet: wake its daemon when what it is made of changed
        (status writes, ours included, change neither the generation nor the labels)."""
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace")), str(meta.get("name")))
        if event_type == "DELETED":
            self._seen.pop(key, None)
            return
        fingerprint = (meta.get("generation"), json.dumps(meta.get("labels") or {}, sort_keys=True))
        if self._seen.get(key) != fingerprint:
            self._seen[key] = fingerprint
            self.wake(*key)

    # --- the daemon ----------------------------------------------------------------------------------

    async def run_daemon(self, namespace: str, name: str, report: Report, stop: asyncio.Event) -> None:
        """Serve one ApplicationSet until ``stop`` is set (deleted, opted out, shutdown; whoever sets
        it also wakes us) or the task is cancelled."""
        key = (namespace, name)
        wakeup = self._wakeups.setdefault(key, asyncio.Event())
        try:
            while not stop.is_set():
                wakeup.clear()
                delay = self.settings.resync_seconds
                try:
                    outcome = await self.reconcile(namespace, name)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    delay = self.settings.retry_seconds
                    if is_transient(exc):
                        log.warning("ApplicationSet %s/%s: pass failed, retrying: %s", namespace, name, exc)
                    else:
                        log.exception("ApplicationSet %s/%s: pass failed", namespace, name)
                    self._report_once(
                        key, report, "Warning", "PropagationRetrying", f"will retry in {delay:.0f}s: {exc}"
                    )
                else:
                    if outcome is not None:
                        self._report_outcome(key, outcome, report)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await wakeup.wait()
        finally:
            self._wakeups.pop(key, None)
            self._rolling.discard(key)

    def _report_outcome(self, key: AppSetKey, outcome: Outcome, report: Report) -> None:
        if outcome.changed:
            log.info("ApplicationSet %s/%s: %s", *key, outcome.describe())
            report("Normal", "Propagated", outcome.describe())
        if outcome.problems:
            reason = "GenerationFailed" if outcome.generation_failed else "TargetErrors"
            if self._report_once(key, report, "Warning", reason, "; ".join(outcome.problems)):
                for problem in outcome.problems:
                    log.warning("ApplicationSet %s/%s: %s", *key, problem)
        else:
            self._reported.pop(key, None)
        for note in outcome.notes:
            log.info("ApplicationSet %s/%s: %s", *key, note)

    def _report_once(self, key: AppSetKey, report: Report, kind: str, reason: str, message: str) -> bool:
        """Post an event when the message changed (a resync repeating the same error stays quiet);
        ``True`` when it was posted."""
        text = (
            message if len(message) <= _EVENT_MESSAGE_LIMIT else message[: _EVENT_MESSAGE_LIMIT - 3] + "..."
        )
        if self._reported.get(key) == f"{reason}:{text}":
            return False
        self._reported[key] = f"{reason}:{text}"
        report(kind, reason, text)
        return True

    # --- one pass ------------------------------------------------------------------------------------

    async def reconcile(self, namespace: str, name: str) -> Outcome | None:
        """One level-based pass; ``None`` when the ApplicationSet is gone, deleting or not opted in."""
        key = (namespace, name)
        async with self._under_way, self._lock(key), _Slot(self._semaphore) as slot:
            # Read it again under the lock: the deletion handler may have run since we were woken.
            body = await self.hub.get_application_set(namespace, name)
            if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
                return None
            if not plan.is_pull_enabled(body):
                return None
            spec = body.get("spec") or {}
            current_status = body.get("status")
            try:
                clusters = await self._inventory()
                inputs = await self._generator_inputs(namespace, spec, clusters)
                desired, strategy, render = self._planned(key, body, inputs)
            except errors.PropagationError as exc:
                # Like Argo CD: a failed generation creates and deletes nothing; what runs keeps running.
                previous = self.book.facts(key)
                self.book.set_facts(
                    key,
                    book.Facts(apps=previous.apps if previous else (), generation_error=str(exc)),
                    current=current_status,
                )
                return Outcome(problems=(str(exc),), generation_failed=True)
            log.debug("ApplicationSet %s/%s: %d works planned", namespace, name, len(desired.works))
            return await self._converge(key, desired, strategy, render, current_status, slot.release)

    def _planned(
        self, key: AppSetKey, body: Mapping[str, Any], inputs: generators.GeneratorInputs
    ) -> tuple[plan.Plan, rollout.Strategy, Callable[[], plan.Plan]]:
        """The pass's plan, its rollout strategy, and how to render it again.

        The plan is made again only when what it is made of changed (the ApplicationSet's identity
        and spec, the generators' inputs): rendering every target's Application was most of a pass,
        and at 3,000 clusters x 50 ApplicationSets each minute's resyncs re-rendered 150,000
        Applications that had not changed, starving the status writer. What is kept between passes
        is the plan's summary (hashes, no documents); a pass that finds something to write
        renders again."""
        meta = body.get("metadata") or {}
        uid, spec = meta.get("uid"), body.get("spec") or {}
        cached = self._plans.get(key)
        if cached is not None and cached.uid == uid and cached.spec == spec and cached.inputs == inputs:
            kept = cached.appset
            return cached.summary, cached.strategy, lambda: self._render(kept, inputs)
        appset = {"metadata": copy.deepcopy(meta), "spec": copy.deepcopy(spec)}
        desired = self._render(appset, inputs)
        strategy = rollout.parse_strategy(spec)
        self._plans[key] = _CachedPlan(uid, appset["spec"], inputs, appset, desired.summary(), strategy)
        return desired, strategy, lambda: desired

    def _render(self, appset: Mapping[str, Any], inputs: generators.GeneratorInputs) -> plan.Plan:
        generation = generators.generate(appset.get("spec") or {}, inputs)
        return plan.plan_application_set(
            appset, generation.params, inputs.inventory, unmatched=generation.unmatched, options=self.options
        )

    async def _converge(
        self,
        key: AppSetKey,
        desired: plan.Plan,
        strategy: rollout.Strategy,
        render: Callable[[], plan.Plan],
        current_status: Mapping[str, Any] | None,
        works_out: Callable[[], None] = lambda: None,
    ) -> Outcome:
        """Make Maestro and the hub hold what ``desired`` says; ``works_out`` is called once every
        work of the pass was sent (the rest of the pass writes mirrors and deletes)."""
        namespace, name = key
        rolling = strategy.type == "RollingSync"
        records = await self._works(
            namespace, name, with_spec=_needs_manifests(strategy), with_status=rolling
        )
        by_id = {str(r.bundle.id): r for r in records}
        mirrors = {
            m["metadata"]["name"]: m
            for m in await self.hub.list_application_metadata(namespace, owner_labels(namespace, name))
            if _annotations(m).get(contract.ANNOTATION_APPSET) == f"{namespace}/{name}"
        }
        self.listener.mirrors_seen(namespace, mirrors.keys())
        work_diff = diff.diff(desired, [_existing(r) for r in records], mirrors.keys())
        decision = rollout.plan_rollout(strategy, _targets(desired, work_diff, by_id, rolling=rolling))
        problems = [e.message for e in desired.errors]
        notes = list(work_diff.notes) + list(decision.warnings)

        creates = [w for w in work_diff.creates if w.application in decision.allowed]
        updates = [(w, e) for w, e in work_diff.updates if w.application in decision.allowed]
        held = {w.application for w in work_diff.creates} | {w.application for w, _ in work_diff.updates}
        held -= decision.allowed

        # A target's work before its mirror, and the mirror once its cluster reported the work's
        # new spec (for a bounded time): a mirror carries the status known when it is written, so it
        # is created or changed with that status in one write instead of a write and a status patch,
        # each a full write of a large object. A mirror follows what its cluster is sent, so one
        # held back by the rollout keeps its old spec. Writes are bounded per stream: at fleet
        # scale one pass carries thousands, and the hub and Maestro batch what arrives at once.
        to_mirror = [
            w
            for w in desired.works
            if w.application not in held and not _mirror_current(w, mirrors.get(w.application))
        ]
        refused = self._mirrors_refused.get(key, set())
        sends: list[tuple[plan.DesiredWork, bool]] = [
            (w, True) for w in creates if w.application not in refused
        ]
        sends += [(w, False) for w, _ in updates if w.application not in refused]
        if (to_mirror or sends) and not desired.rendered:
            rendered = {w.key: w for w in render().works}
            to_mirror = [rendered[w.key] for w in to_mirror]
            sends = [(rendered[w.key], create) for w, create in sends]
        listed = {w.application: by_id[e.work_id].bundle.version for w, e in updates}
        mirrored = {w.application for w in to_mirror}
        # Two streams at once, so that Maestro and the hub both work: the works, and the mirrors,
        # each mirror once its own work went out and its status came back.
        gates = {w.application: asyncio.Event() for w, _ in sends}
        reported = {
            w.application: self.listener.expect(namespace, w.application, listed.get(w.application, 0))
            for w, _ in sends
            if w.application in mirrored
        }

        holding: set[str] = set()  # targets of this pass holding a place in flight

        def landed(application: str) -> None:
            """The target's mirror was written, or none will be: its place in flight is free."""
            if application in holding:
                holding.discard(application)
                self._in_flight.release()

        async def publish(send: tuple[plan.DesiredWork, bool]) -> str | None:
            application = send[0].application
            refused: str | None = "not sent"
            try:
                await self._in_flight.acquire()
                holding.add(application)
                refused = await self._publish(send[0], create=send[1])
                return refused
            finally:
                waiting = reported.get(application)
                if refused and waiting is not None:
                    waiting.cancel()  # no new status will come: do not wait for one
                if refused or application not in mirrored:
                    landed(application)
                gates[application].set()

        async def ready(work: plan.DesiredWork) -> None:
            gate = gates.get(work.application)
            if gate is not None:
                await gate.wait()
            waiting = reported.get(work.application)
            if waiting is not None:  # done, given up (cancelled) or timed out: write it then
                await asyncio.wait((waiting,), timeout=self.settings.mirror_status_seconds)

        async def mirror(work: plan.DesiredWork) -> str | None:
            try:
                return await self._apply_mirror(work, mirrors.get(work.application))
            finally:
                landed(work.application)

        try:
            async with asyncio.TaskGroup() as group:  # one failing cancels the other; the pass is retried
                publishing = group.create_task(self._each(sends, publish))
                publishing.add_done_callback(lambda _: works_out())
                mirroring = group.create_task(self._each(to_mirror, mirror, ready=ready))
        finally:
            for application in list(holding):
                landed(application)
            self.listener.release(namespace, reported)  # those whose mirror was not written
        refusals, results = publishing.result(), mirroring.result()
        problems.extend(r for r in refusals if r)
        sent = {
            w.application: (w, create) for (w, create), r in zip(sends, refusals, strict=True) if r is None
        }
        applied = sum(1 for r in results if r is None)
        problems.extend(r for r in results if r is not None)
        # A mirror the hub did not take (its name is another Application's, or the hub refuses
        # it): that target is not deployed meanwhile (its work, if this pass created it, is deleted
        # again), and on the next passes its mirror is tried before its work is sent.
        blocked = {w.application for w, r in zip(to_mirror, results, strict=True) if r is not None}
        self._mirrors_refused[key] = blocked
        retracted = [sent.pop(app)[0] for app in sorted(blocked) if app in sent and sent[app][1]]
        await self._each(retracted, lambda w: self._delete_work(w.cluster, w.work_id))
        created = sum(1 for _, create in sent.values() if create)
        updated = sum(1 for _, create in sent.values() if not create)

        doomed = self._deletion_group(strategy, work_diff.deletes, records, notes)
        await self._each(doomed, lambda existing: self._delete_work(existing.cluster, existing.work_id))

        await self._each(list(work_diff.mirror_deletes), lambda m: self._delete_mirror(namespace, m))

        statuses = {s.application: s for s in decision.statuses}
        if rolling:
            self._rolling.add(key)
        else:
            self._rolling.discard(key)
        self.book.set_facts(
            key,
            book.Facts(
                apps=tuple(
                    book.AppFact(
                        w.application,
                        w.target_revisions,
                        _rollout_entry(statuses.get(w.application)) if rolling else None,
                    )
                    for w in desired.works
                ),
                target_errors=tuple(problems),
                rollout_progressing=decision.progressing if rolling else None,
                rollout_step=decision.current_step if rolling else None,
            ),
            current=current_status,
        )
        return Outcome(
            created=created,
            updated=updated,
            deleted=len(doomed) + len(retracted),
            mirrors_applied=applied,
            mirrors_deleted=len(work_diff.mirror_deletes),
            problems=tuple(problems),
            notes=tuple(notes),
            rolling=rolling,
        )

    async def _each(
        self,
        items: Sequence[_T],
        write: Callable[[_T], Awaitable[_R]],
        *,
        ready: Callable[[_T], Awaitable[None]] | None = None,
    ) -> list[_R]:
        """``write`` for every item (once ``ready`` for it returned, when given: waiting holds no
        write slot), ``settings.write_concurrency`` at a time, results in order; the first exception
        cancels the rest and fails the pass (it is retried as a whole, and every write is
        idempotent)."""
        if not items:
            return []
        limit = asyncio.Semaphore(self.settings.write_concurrency)

        async def one(item: _T) -> _R:
            if ready is not None:
                await ready(item)
            async with limit:
                return await write(item)

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(item)) for item in items]
        return [t.result() for t in tasks]

    def _deletion_group(
        self,
        strategy: rollout.Strategy,
        deletes: Sequence[diff.ExistingWork],
        records: Sequence[bundles.BundleRecord],
        notes: list[str],
    ) -> list[diff.ExistingWork]:
        """The works to delete now: all of them, or under ``deletionOrder: Reverse`` the next group
        once the previous one is gone."""
        if strategy.deletion_order != "Reverse" or not deletes:
            return list(deletes)
        if any(r.bundle.deleting for r in records):
            notes.append("deletionOrder Reverse: waiting for the works being deleted to be gone")
            return []
        by_id = {str(r.bundle.id): r for r in records}
        apps = {w.work_id: _worker_app(by_id[w.work_id]) for w in deletes}
        groups = rollout.deletion_groups(strategy, list(apps.values()))
        first = set(groups[0]) if groups else set()
        return [w for w in deletes if apps[w.work_id][0] in first]

    # --- reads -------------------------------------------------------------------------------------

    async def _inventory(self) -> inventory.Inventory:
        """The cluster Secrets, re-listed when one changed (a watch event) or after half a resync."""
        now = asyncio.get_running_loop().time()
        cached = self._inventory_cache
        if (
            cached is not None
            and cached[0] == self._inventory_generation
            and now - cached[1] < self.settings.resync_seconds / 2
        ):
            return cached[2]
        generation = self._inventory_generation
        secrets = await self.hub.list_secrets(
            self.settings.inventory_namespace, {inventory.SECRET_TYPE_LABEL: inventory.SECRET_TYPE_CLUSTER}
        )
        clusters = inventory.Inventory.from_secrets(secrets)
        if clusters.problems and (cached is None or cached[2].problems != clusters.problems):
            for problem in clusters.problems:
                log.warning("inventory: %s", problem)
        self._inventory_cache = (generation, now, clusters)
        return clusters

    async def _generator_inputs(
        self, namespace: str, spec: Mapping[str, Any], clusters: inventory.Inventory
    ) -> generators.GeneratorInputs:
        config_maps: dict[str, dict[str, str]] = {}
        for cm_name in generators.referenced_config_maps(spec):
            found = await self.hub.get_config_map(namespace, cm_name)
            if found is not None:
                config_maps[cm_name] = {str(k): str(v) for k, v in (found.get("data") or {}).items()}
        decisions: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for data in config_maps.values():
            api_version, kind = data.get("apiVersion", ""), data.get("kind", "")
            if "/" in api_version[1:] and kind and (api_version, kind) not in decisions:
                decisions[(api_version, kind)] = await self.hub.list_namespaced(api_version, kind, namespace)
        return generators.GeneratorInputs(clusters, config_maps, decisions)

    async def _works(
        self, namespace: str, name: str, *, with_spec: bool, with_status: bool = False
    ) -> list[bundles.BundleRecord]:
        """The works Maestro holds for this ApplicationSet (labels may be hashed, so the full name
        in the annotation decides). Their specs only ``with_spec`` and their statuses only
        ``with_status``: a pass compares spec-hash annotations, and only a RollingSync's gates read
        statuses; at fleet scale decoding thousands of each per pass was wasted work."""
        records, _ = await self.maestro.list(
            queries.ResourceFilter(source=self.options.source, labels=owner_labels(namespace, name)),
            with_spec=with_spec,
            with_status=with_status,
        )
        ref = f"{namespace}/{name}"
        return [
            r for r in records if _work_annotations(r.bundle.metadata).get(contract.ANNOTATION_APPSET) == ref
        ]

    # --- writes ------------------------------------------------------------------------------------

    async def _apply_mirror(self, work: plan.DesiredWork, current: Mapping[str, Any] | None) -> str | None:
        """Create or update the hub mirror (the caller found it missing or out of date) with the
        status known for it now; a problem when the name is taken by an Application that is not
        this ApplicationSet's, or the hub refuses the Application.

        The status goes with every apply, not only the first: a field the propagation's manager
        once applied and later leaves out would be removed by server-side apply."""
        meta = work.hub_application["metadata"]
        status = self.listener.status_of(meta["namespace"], meta["name"])
        mirror = work.hub_mirror(status)
        try:
            problem = await self._write_mirror(mirror, created=current is None)
        except hub.ClusterError as exc:
            # refused for good (e.g. a field the hub's Application CRD does not declare): the hub
            # names the field, and the same write would be refused again on every pass
            fix = "; fix the ApplicationSet's template" if exc.status in (400, 422, 500) else ""
            problem = f"the hub refused Application {meta['namespace']}/{meta['name']}: {exc}{fix}"
        if problem is not None:
            return problem
        self.listener.mirror_written(meta["namespace"], meta["name"], status)
        return None

    async def _write_mirror(self, mirror: Mapping[str, Any], *, created: bool) -> str | None:
        """One server-side apply of the mirror; a problem when the name is someone else's."""
        meta, manager = mirror["metadata"], self.settings.field_manager
        if not created:
            await self.hub.apply_application(mirror, field_manager=manager)
            return None
        try:
            # Not forced: an Application of that name set up by someone else conflicts instead
            # of being taken over (and a new name costs one request, not a read and a write).
            await self.hub.apply_application(mirror, field_manager=manager, force=False)
        except hub.ConflictError:
            taken = await self.hub.get_application(meta["namespace"], meta["name"])
            if taken is not None and _annotations(taken).get(contract.ANNOTATION_APPSET) != (
                _annotations(mirror).get(contract.ANNOTATION_APPSET)
            ):
                return (
                    f"hub Application {meta['namespace']}/{meta['name']} already exists and does not "
                    "belong to this ApplicationSet; rename the template's metadata.name or delete that "
                    "Application"
                )
            await self.hub.apply_application(mirror, field_manager=manager)  # ours, from an older pass
        return None

    async def _publish(self, work: plan.DesiredWork, *, create: bool) -> str | None:
        """Send a create or update; a problem message when Maestro refuses it for good."""
        spec = bundles.ManifestBundle(
            manifests=work.bundle["manifests"],
            delete_option=work.bundle.get("deleteOption"),
            manifest_configs=work.bundle.get("manifestConfigs") or [],
        )
        try:
            await self.maestro.apply(
                work.cluster, uuid.UUID(work.work_id), spec, metadata=work.metadata, create=create
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() in TRANSIENT_CODES:
                raise
            hint = ""
            if exc.code() == grpc.StatusCode.NOT_FOUND and not create:
                hint = " (the work vanished; it is re-created on the next pass)"
            elif exc.code() == grpc.StatusCode.NOT_FOUND:
                hint = (
                    f"; is cluster {work.cluster!r} registered with Maestro "
                    f"(`fleetplane maestro consumers create {work.cluster}`)?"
                )
            verb = "create" if create else "update"
            return (
                f"cluster {work.cluster}: Maestro refused to {verb} the work of Application "
                f"{work.application!r}: {exc.code().name}: {exc.details()}{hint}"
            )
        return None

    async def _delete_mirror(self, namespace: str, name: str) -> None:
        await self.hub.delete_application(namespace, name)
        self.listener.mirror_deleted(namespace, name)

    async def _delete_work(self, cluster: str, work_id: str) -> None:
        try:
            await self.maestro.delete(cluster, uuid.UUID(work_id))
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:  # already gone is what we wanted
                raise

    # --- deletion and clean-up ----------------------------------------------------------------------

    async def finalize(self, namespace: str, name: str, spec: Mapping[str, Any]) -> int:
        """The ApplicationSet is being deleted: delete its works; once Maestro holds none (each
        agent confirmed the deletion on its cluster), delete its mirrors. Returns the works left."""
        key = (namespace, name)
        async with self._lock(key):
            try:
                strategy = rollout.parse_strategy(spec)
            except errors.RolloutError:
                strategy = rollout.Strategy()
            records = await self._works(namespace, name, with_spec=_needs_manifests(strategy))
            live = [_existing(r) for r in records if not r.bundle.deleting]
            doomed = self._deletion_group(strategy, live, records, [])
            await self._each(doomed, lambda existing: self._delete_work(existing.cluster, existing.work_id))
            if records:
                return len(records)
            owned = [
                m["metadata"]["name"]
                for m in await self.hub.list_application_metadata(namespace, owner_labels(namespace, name))
                if _annotations(m).get(contract.ANNOTATION_APPSET) == f"{namespace}/{name}"
            ]
            await self._each(owned, lambda mirror: self._delete_mirror(namespace, mirror))
            self.book.drop(key)
            self._reported.pop(key, None)
            self._locks.pop(key, None)
            self._plans.pop(key, None)
            return 0

    async def sweep(self) -> int:
        """Delete the works (and mirrors) of ApplicationSets that are gone or no longer opted in:
        what the finalizer could not do (the label removed, the finalizer removed by hand)."""
        # Every work of the source, each minute: page by page, asking only for the metadata (reading
        # 150,000 specs and statuses to find the few orphans would dwarf the sweep's use).
        owners: dict[AppSetKey, list[_OwnedWork]] = {}
        async for page in self.maestro.pages(
            queries.ResourceFilter(source=self.options.source), with_spec=False, with_status=False
        ):
            for item in page.items:
                meta = orjson.loads(item.metadata) if item.metadata else {}
                namespace, _, name = str(
                    _work_annotations(meta).get(contract.ANNOTATION_APPSET, "")
                ).partition("/")
                if namespace and name:
                    deleting = item.deletion_state == stubs.query.DELETION_STATE_DELETING
                    owners.setdefault((namespace, name), []).append(
                        _OwnedWork(item.consumer, item.id, deleting)
                    )
            await asyncio.sleep(0)
        deleted = 0
        for key, owned in owners.items():
            if key in self._wakeups:
                continue  # a daemon serves it
            body = await self.hub.get_application_set(*key)
            if body is not None and plan.is_pull_enabled(body):
                continue  # its daemon is starting, or its finalizer is running
            async with self._lock(key):
                for work in owned:
                    if not work.deleting:
                        await self._delete_work(work.cluster, work.work_id)
                        deleted += 1
                if body is not None:  # opted out: its mirrors would otherwise stay until it is deleted
                    for mirror in await self.hub.list_application_metadata(key[0], owner_labels(*key)):
                        await self.hub.delete_application(key[0], mirror["metadata"]["name"])
                        self.listener.mirror_deleted(key[0], mirror["metadata"]["name"])
            log.info("ApplicationSet %s/%s is gone or opted out: deleting its %d works", *key, len(owned))
        return deleted

    async def sweep_forever(self) -> None:
        await periodic.run_periodically(
            self.sweep, self.settings.resync_seconds, what="sweep of orphaned works"
        )


# --- helpers -----------------------------------------------------------------------------------------


class _Slot:
    """A place of a semaphore that its holder may give up before the end of its block."""

    def __init__(self, semaphore: asyncio.Semaphore) -> None:
        self._semaphore = semaphore
        self._held = False

    async def __aenter__(self) -> _Slot:
        await self._semaphore.acquire()
        self._held = True
        return self

    async def __aexit__(self, *_: object) -> None:
        self.release()

    def release(self) -> None:
        if self._held:
            self._held = False
            self._semaphore.release()


@dataclasses.dataclass(frozen=True, slots=True)
class _CachedPlan:
    """A plan and what it was made from (compared by value on the next pass)."""

    uid: str | None
    spec: Mapping[str, Any]
    inputs: generators.GeneratorInputs
    #: the ApplicationSet's metadata and spec, to render the plan again
    appset: Mapping[str, Any]
    summary: plan.Plan
    strategy: rollout.Strategy


@dataclasses.dataclass(frozen=True, slots=True)
class _OwnedWork:
    """What the sweep needs of a work: where it is, and whether its deletion already started."""

    cluster: str
    work_id: str
    deleting: bool


def _mirror_current(work: plan.DesiredWork, current: Mapping[str, Any] | None) -> bool:
    if current is None:
        return False
    return _annotations(current).get(contract.ANNOTATION_MIRROR_HASH) == work.mirror_hash


def _needs_manifests(strategy: rollout.Strategy) -> bool:
    """Whether a pass reads the works' manifests: only a reverse deletion order does (it groups the
    works by their Application's labels); everything else is in the works' metadata."""
    return strategy.deletion_order == "Reverse"


def _existing(record: bundles.BundleRecord) -> diff.ExistingWork:
    meta = record.bundle.metadata
    spec_hash = _work_annotations(meta).get(contract.ANNOTATION_SPEC_HASH)
    return diff.ExistingWork(
        work_id=str(record.bundle.id),
        cluster=record.bundle.consumer,
        name=str(meta.get("name") or ""),
        spec_hash=spec_hash,
        # A work without the hash (sent by something else) compares by its spec, when it was read.
        bundle=None if spec_hash or not record.bundle.manifests else record.bundle.spec.to_json(),
        deleting=record.bundle.deleting,
    )


def _worker_app(record: bundles.BundleRecord) -> tuple[str, Mapping[str, str]]:
    """The worker Application's name and labels in a stored work (its only manifest)."""
    manifest = record.bundle.manifests[0] if record.bundle.manifests else {}
    meta = manifest.get("metadata") or {}
    return str(meta.get("name") or record.bundle.metadata.get("name") or ""), meta.get("labels") or {}


def _targets(
    desired: plan.Plan,
    work_diff: diff.WorkDiff,
    records: Mapping[str, bundles.BundleRecord],
    *,
    rolling: bool,
) -> list[rollout.RolloutTarget]:
    pending = {w.application for w in work_diff.creates} | {w.application for w, _ in work_diff.updates}
    # Only a RollingSync's gates read the statuses: other passes skip aggregating thousands of them.
    status: Mapping[str, Any] = {"sync": {"status": "Unknown"}, "health": {"status": "Unknown"}}
    targets = []
    for work in desired.works:
        record = records.get(work.work_id)
        if rolling:
            reported = record.status.to_json() if record is not None and record.status is not None else None
            status = aggregate.application_status(reported, cluster=work.cluster)
        targets.append(
            rollout.RolloutTarget(
                application=work.application,
                labels=work.labels,
                pending_change=work.application in pending,
                status_current=record is not None
                and record.status is not None
                and record.status_version == record.bundle.version,
                sync_status=status["sync"]["status"],
                health_status=status["health"]["status"],
            )
        )
    return targets


def _rollout_entry(status: rollout.AppRolloutStatus | None) -> Mapping[str, str] | None:
    if status is None:
        return None
    return {"status": status.status, "step": status.step, "message": status.message}


# --- kopf wiring -------------------------------------------------------------------------------------


def register(registry: kopf.OperatorRegistry, controller: PropagationController) -> None:
    """Add the propagation handlers to ``registry`` (the operator's, not kopf's global default)."""
    group, version = hub.ARGOCD_GROUP, hub.ARGOCD_VERSION
    pull = {contract.PULL_LABEL: contract.PULL_LABEL_VALUE}
    inventory_namespace = controller.settings.inventory_namespace

    # Explicit ids: kopf keys its progress annotations by handler id, and the default ids of
    # nested functions ("register.<locals>.x") are not valid annotation names.
    @kopf.on.event(group, version, hub.APPLICATION_SETS, registry=registry, id="applicationset-changed")
    async def applicationset_changed(type: str | None, body: kopf.Body, **_: Any) -> None:
        controller.appset_seen(type, body)

    # cancellation_timeout: kopf cancels an async daemon only when one is set; without it a
    # deleted ApplicationSet's daemon would be left running.
    @kopf.daemon(
        group,
        version,
        hub.APPLICATION_SETS,
        labels=pull,
        registry=registry,
        id="propagate",
        cancellation_timeout=5.0,
    )
    async def propagate(
        namespace: str | None, name: str, body: kopf.Body, stopped: kopf.DaemonStopped, **_: Any
    ) -> None:
        def report(kind: str, reason: str, message: str) -> None:
            kopf.event(body, type=kind, reason=reason, message=message)

        # Exit on kopf's stop flag rather than wait to be cancelled (kopf warns about those).
        stop = asyncio.Event()

        async def relay_stop() -> None:
            await stopped.wait()
            stop.set()
            controller.wake(str(namespace), name)

        relay = asyncio.create_task(relay_stop())
        try:
            await controller.run_daemon(str(namespace), name, report, stop)
        finally:
            relay.cancel()

    @kopf.on.delete(group, version, hub.APPLICATION_SETS, labels=pull, registry=registry, id="unpropagate")
    async def unpropagate(namespace: str | None, name: str, spec: kopf.Spec, **_: Any) -> None:
        try:
            remaining = await controller.finalize(str(namespace), name, dict(spec))
        except Exception as exc:
            if is_transient(exc):  # kopf's default for other errors is a minute's backoff
                raise kopf.TemporaryError(f"Maestro or the hub unavailable: {exc}", delay=5) from exc
            raise
        if remaining:
            raise kopf.TemporaryError(
                f"waiting for {remaining} work(s) to be deleted from their clusters", delay=3
            )

    def in_inventory(namespace: str | None, **_: Any) -> bool:
        return namespace == inventory_namespace

    @kopf.on.event(
        "",
        "v1",
        "secrets",
        labels={inventory.SECRET_TYPE_LABEL: inventory.SECRET_TYPE_CLUSTER},
        when=in_inventory,
        registry=registry,
        id="inventory-changed",
    )
    async def inventory_changed(**_: Any) -> None:
        controller.inventory_changed()

    for resource in controller.settings.decision_resources:
        plural, _, rest = resource.partition(".")
        decision_version, _, decision_group = rest.partition(".")

        @kopf.on.event(
            decision_group, decision_version, plural, registry=registry, id=f"decisions-{resource}"
        )
        async def decisions_changed(namespace: str | None, **_: Any) -> None:
            controller.wake_all(str(namespace))
