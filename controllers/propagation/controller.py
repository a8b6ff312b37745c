"""The Application Propagation controller: ApplicationSets on the hub -> works in Maestro + hub mirrors.

``controllers.operator`` builds one ``PropagationController`` and hands it to
``controllers.propagation.handlers.register``, which wires it into kopf: a daemon per opted-in
ApplicationSet runs ``run_daemon``, watch events wake the daemons, the deletion handler calls
``finalize``; the operator runs ``sweep_forever`` (``controllers.propagation.sweep``).

A daemon's pass (``reconcile``) is level-based: it compares the plan with what Maestro and the hub
hold now, so a missed event, a restart or a manual edit is repaired on the next pass. It reads the
inventory and generator inputs from the hub, runs the pure pipeline (``generators.generate`` ->
``plan.plan_application_set``), then ``convergence.converge`` (``diff.diff`` ->
``rollout.plan_rollout`` -> works published through ``MaestroClient``, mirrors server-side-applied,
facts recorded in the ``StatusBook``, from which the status controller writes the ApplicationSet's
status). A problem of the ApplicationSet's own making (unknown generator, template error,
unregistered cluster...) becomes a condition and a Warning event, never an exception: other
ApplicationSets and running apps are untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import json
import logging
import pathlib
import random
from collections.abc import Callable, Mapping
from typing import Any

from controllers import hub, periodic
from controllers import metrics as metrics_mod
from controllers.propagation import (
    convergence,
    errors,
    generators,
    git_reader,
    inventory,
    plan,
    progressive_sync,
    rollout,
    stored_works,
    sweep,
)
from controllers.propagation.concurrency import Slot
from controllers.propagation.mirror_cache import MirrorCache
from controllers.propagation.outcome import Outcome, is_transient
from controllers.propagation.settings import MirrorListener, PropagationSettings
from controllers.propagation.works_and_mirrors import WorksAndMirrors
from controllers.status import book
from maestro.client import MaestroClient

log = logging.getLogger(__name__)

AppSetKey = book.AppSetKey
#: ``(type, reason, message)`` -> a Kubernetes event on the ApplicationSet
Report = Callable[[str, str, str], None]

_EVENT_MESSAGE_LIMIT = 1000


class PropagationController:
    def __init__(
        self,
        hub_client: hub.HubClient,
        maestro: MaestroClient,
        status_book: book.StatusBook,
        listener: MirrorListener,
        settings: PropagationSettings | None = None,
        options: plan.PlanOptions | None = None,
        metrics: metrics_mod.ControllerMetrics | None = None,
        mirror_cache: MirrorCache | None = None,
    ) -> None:
        settings = settings or PropagationSettings()
        options = options or plan.PlanOptions()
        if maestro.source != options.source:
            raise ValueError(
                f"the Maestro client publishes as {maestro.source!r} but plans use source "
                f"{options.source!r}; they must be the same (work ids depend on it)"
            )
        self.hub = hub_client
        self.book = status_book
        self.settings = settings
        self.options = options
        self.maestro = maestro
        self.listener = listener
        #: the hub mirrors a pass reads (None: each pass lists its own)
        self.mirror_cache = mirror_cache
        self.metrics = metrics or metrics_mod.ControllerMetrics()
        self.metrics.application_sets.set_function(lambda: len(self._wakeups))
        self.git = git_reader.GitReader(
            pathlib.Path(settings.git_cache_dir), poll_seconds=settings.git_poll_seconds
        )
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
        #: each RollingSync's ``applicationStatus`` as its last pass left it
        self._rollout_entries: dict[AppSetKey, dict[str, progressive_sync.Entry]] = {}
        self._inventory_generation = 0
        self._inventory_cache: tuple[int, float, inventory.Inventory] | None = None

    def _io(self) -> WorksAndMirrors:
        """The reads and writes of a pass, with the settings and listener of the moment."""
        return WorksAndMirrors(
            self.hub,
            self.maestro,
            self.listener,
            self.settings,
            self.options.source,
            self.metrics,
            self.mirror_cache,
        )

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
        failures = 0
        try:
            while not stop.is_set():
                wakeup.clear()
                delay = self.settings.resync_seconds
                try:
                    outcome = await self._timed_reconcile(namespace, name)
                    failures = 0
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    failures += 1
                    delay = retry_delay(self.settings, failures)
                    self.metrics.errors.labels("propagation").inc()
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
            self._rollout_entries.pop(key, None)

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

    async def _timed_reconcile(self, namespace: str, name: str) -> Outcome | None:
        """``reconcile``, counted by outcome and timed."""
        kind = metrics_mod.APPLICATION_SET
        with self.metrics.reconcile_seconds.labels(kind).time():
            try:
                outcome = await self.reconcile(namespace, name)
            except asyncio.CancelledError:
                raise
            except Exception:
                self.metrics.reconciles.labels(kind, metrics_mod.ERROR).inc()
                raise
        self.metrics.reconciles.labels(kind, _outcome(outcome)).inc()
        return outcome

    async def reconcile(self, namespace: str, name: str) -> Outcome | None:
        """One level-based pass; ``None`` when the ApplicationSet is gone, deleting or not opted in."""
        key = (namespace, name)
        async with self._under_way, self._lock(key), Slot(self._semaphore) as slot:
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
                desired, strategy, render = await self._planned(key, body, inputs)
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
            outcome = await convergence.converge(
                self._io(),
                self.book,
                self._in_flight,
                self._mirrors_refused,
                self._rollout_entries,
                key,
                desired,
                strategy,
                render,
                current_status,
                slot.release,
            )
            if outcome.rolling:
                self._rolling.add(key)
            else:
                self._rolling.discard(key)
            return outcome

    async def _planned(
        self, key: AppSetKey, body: Mapping[str, Any], inputs: generators.GeneratorInputs
    ) -> tuple[plan.Plan, rollout.Strategy, Callable[[], plan.Plan]]:
        """The pass's plan, its rollout strategy, and how to render it again.

        The plan is made again only when what it is made of changed (the ApplicationSet's identity
        and spec, the generators' inputs): rendering every target's Application was most of a pass,
        and at 3,000 clusters x 50 ApplicationSets each minute's resyncs re-rendered 150,000
        Applications that had not changed, starving the status writer. What is kept between passes
        is the plan's summary (hashes, no documents); a pass that finds something to write
        renders again. A render runs on a worker thread: over 3,000 clusters it takes about half a
        second of CPU, which would hold the event loop and every other pass, watch and status
        write with it."""
        meta = body.get("metadata") or {}
        uid, spec = meta.get("uid"), body.get("spec") or {}
        cached = self._plans.get(key)
        if cached is not None and cached.uid == uid and cached.spec == spec and cached.inputs == inputs:
            kept = cached.appset
            return cached.summary, cached.strategy, lambda: self._render(kept, inputs)
        appset = {"metadata": copy.deepcopy(meta), "spec": copy.deepcopy(spec)}
        desired = await asyncio.to_thread(self._render, appset, inputs)
        strategy = rollout.parse_strategy(spec)
        self._plans[key] = _CachedPlan(uid, appset["spec"], inputs, appset, desired.summary(), strategy)
        return desired, strategy, lambda: desired

    def _render(self, appset: Mapping[str, Any], inputs: generators.GeneratorInputs) -> plan.Plan:
        generation = generators.generate(appset.get("spec") or {}, inputs)
        return plan.plan_application_set(
            appset, generation.params, inputs.inventory, unmatched=generation.unmatched, options=self.options
        )

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
        git = await self.git.read(generators.referenced_git(spec))
        return generators.GeneratorInputs(clusters, config_maps, decisions, git)

    # --- deletion and clean-up ----------------------------------------------------------------------

    async def finalize(self, namespace: str, name: str, spec: Mapping[str, Any]) -> int:
        """The ApplicationSet is being deleted: delete its works; once Maestro holds none (each
        agent confirmed the deletion on its cluster), delete its mirrors. Returns the works left."""
        kind = metrics_mod.APPLICATION_SET
        try:
            remaining = await self._finalize(namespace, name, spec)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.metrics.reconciles.labels(kind, metrics_mod.ERROR).inc()
            self.metrics.errors.labels("finalizer").inc()
            raise
        outcome = metrics_mod.DELETING if remaining else metrics_mod.DELETED
        self.metrics.reconciles.labels(kind, outcome).inc()
        return remaining

    async def _finalize(self, namespace: str, name: str, spec: Mapping[str, Any]) -> int:
        key = (namespace, name)
        async with self._lock(key):
            try:
                strategy = rollout.parse_strategy(spec)
            except errors.RolloutError:
                strategy = rollout.Strategy()
            io = self._io()
            records = await io.works(namespace, name, with_spec=stored_works.needs_manifests(strategy))
            live = [stored_works.existing(r) for r in records if not r.bundle.deleting]
            doomed = stored_works.deletion_group(strategy, live, records, [])
            await io.each(doomed, lambda existing: io.delete_work(existing.cluster, existing.work_id))
            if records:
                return len(records)
            owned = [m["metadata"]["name"] for m in await io.mirrors(namespace, name, listed=True)]
            await io.each(owned, lambda mirror: io.delete_mirror(namespace, mirror))
            self.book.drop(key)
            self._reported.pop(key, None)
            self._locks.pop(key, None)
            self._plans.pop(key, None)
            return 0

    async def sweep(self) -> int:
        """Delete the works (and mirrors) of ApplicationSets that are gone or no longer opted in."""
        return await sweep.sweep(self._io(), served=self._wakeups.__contains__, lock=self._lock)

    async def sweep_forever(self) -> None:
        await periodic.run_periodically(
            self.sweep,
            self.settings.resync_seconds,
            what="sweep of orphaned works",
            on_error=self.metrics.errors.labels("sweep").inc,
        )


#: a pass failing again and again is retried at most this many times ``retry_seconds`` apart
RETRY_BACKOFF_LIMIT = 4


def retry_delay(settings: PropagationSettings, failures: int) -> float:
    """Seconds before the next try of a pass that failed ``failures`` times in a row: doubling from
    ``retry_seconds`` up to ``RETRY_BACKOFF_LIMIT`` times it (never past ``resync_seconds``), less
    up to a tenth of jitter. A busy hub fails the passes of every ApplicationSet at once; retried
    together at a fixed pace, their reads would keep it busy."""
    factor = min(2 ** min(failures - 1, 16), RETRY_BACKOFF_LIMIT)  # 16: no huge powers after hours
    base = min(settings.retry_seconds * factor, max(settings.resync_seconds, settings.retry_seconds))
    return base * random.uniform(0.9, 1.0)


def _outcome(outcome: Outcome | None) -> str:
    if outcome is None:
        return metrics_mod.SKIPPED
    if outcome.problems:
        return metrics_mod.PROBLEMS
    return metrics_mod.CHANGED if outcome.changed else metrics_mod.UNCHANGED


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
