"""One propagation pass after planning: make Maestro and the hub hold what the plan says.

``controllers.propagation.controller`` calls ``converge`` with the pass's plan; the steps, in order:

1. **read** what Maestro holds for the ApplicationSet (its works) and what the hub holds (its mirrors);
2. **decide** what to send: under RollingSync, ``progressive_sync.decide`` first says which
   Applications carry a sync operation; then ``diff.diff`` against the plan, and which mirrors
   to write;
3. **send and mirror**: the works and the mirrors in two streams, each mirror once its own work
   went out and its status came back;
4. **retract** the works just created whose mirror the hub did not take;
5. **delete** the works and mirrors the plan no longer has;
6. **record** the ApplicationSet's facts in the ``StatusBook``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from controllers.propagation import diff, plan, progressive_sync, rollout, stored_works
from controllers.propagation.outcome import Outcome
from controllers.propagation.works_and_mirrors import WorksAndMirrors
from controllers.status import book
from maestro.api import bundles

#: a work to send, and whether it is a create (else an update)
_Send = tuple[plan.DesiredWork, bool]


@dataclasses.dataclass(frozen=True)
class _Held:
    """What Maestro and the hub hold for the ApplicationSet."""

    records: Sequence[bundles.BundleRecord]
    #: work id -> its record
    by_id: Mapping[str, bundles.BundleRecord]
    #: mirror name -> its metadata
    mirrors: Mapping[str, Mapping[str, Any]]


@dataclasses.dataclass(frozen=True)
class _Changes:
    """What the pass sends and writes."""

    work_diff: diff.WorkDiff
    #: under RollingSync only
    decision: progressive_sync.Decision | None
    sends: list[_Send]
    to_mirror: list[plan.DesiredWork]
    #: the version each updated work was listed at
    listed: Mapping[str, int]
    notes: list[str]


@dataclasses.dataclass(frozen=True)
class _Written:
    #: the works Maestro took, by Application
    sent: dict[str, _Send]
    #: Applications whose mirror the hub did not take
    blocked: set[str]
    mirrors_applied: int
    problems: list[str]


async def converge(
    io: WorksAndMirrors,
    status_book: book.StatusBook,
    in_flight: asyncio.Semaphore,
    refused_mirrors: dict[book.AppSetKey, set[str]],
    rollout_entries: dict[book.AppSetKey, dict[str, progressive_sync.Entry]],
    key: book.AppSetKey,
    desired: plan.Plan,
    strategy: rollout.Strategy,
    render: Callable[[], plan.Plan],
    current_status: Mapping[str, Any] | None,
    works_out: Callable[[], None] = lambda: None,
) -> Outcome:
    """Make Maestro and the hub hold what ``desired`` says; ``works_out`` is called once every work
    of the pass was sent (the rest of the pass writes mirrors and deletes). ``in_flight`` bounds
    the targets whose work was sent and whose mirror is not yet written, over all passes;
    ``refused_mirrors`` keeps, per ApplicationSet, the mirrors the hub did not take last time;
    ``rollout_entries`` its RollingSync's ``applicationStatus`` (read from ``current_status`` the
    first time)."""
    rolling = strategy.type == "RollingSync"
    held = await _read(io, key, strategy, rolling=rolling)
    decision = None
    if not rolling:
        rollout_entries.pop(key, None)
    else:
        previous = rollout_entries.get(key)
        if previous is None:
            previous = _entries_from(current_status)
        decision = progressive_sync.decide(
            strategy,
            stored_works.observed(desired, held.by_id),
            previous,
            datetime.datetime.now(datetime.UTC),
        )
        rollout_entries[key] = {e.application: e for e in decision.entries}
    # on a worker thread: it may render the whole plan again (see ``PropagationController._planned``)
    refused = refused_mirrors.get(key, set())
    changes = await asyncio.to_thread(_decide, desired, decision, render, held, refused)
    written = await _send_and_mirror(io, in_flight, key, held, changes, works_out)
    # A mirror the hub did not take (its name is another Application's, or the hub refuses it):
    # that target is not deployed meanwhile (its work, if this pass created it, is deleted again),
    # and on the next passes its mirror is tried before its work is sent.
    refused_mirrors[key] = written.blocked
    retracted = await _retract(io, written)
    doomed = stored_works.deletion_group(strategy, changes.work_diff.deletes, held.records, changes.notes)
    await io.each(doomed, lambda existing: io.delete_work(existing.cluster, existing.work_id))
    await io.each(list(changes.work_diff.mirror_deletes), lambda m: io.delete_mirror(key[0], m))
    problems = [e.message for e in desired.errors] + written.problems
    _record(status_book, key, desired, decision, problems, current_status)
    return Outcome(
        created=sum(1 for _, create in written.sent.values() if create),
        updated=sum(1 for _, create in written.sent.values() if not create),
        deleted=len(doomed) + len(retracted),
        mirrors_applied=written.mirrors_applied,
        mirrors_deleted=len(changes.work_diff.mirror_deletes),
        problems=tuple(problems),
        notes=tuple(changes.notes),
        rolling=rolling,
    )


async def _read(
    io: WorksAndMirrors, key: book.AppSetKey, strategy: rollout.Strategy, *, rolling: bool
) -> _Held:
    namespace, name = key
    records = await io.works(
        namespace, name, with_spec=stored_works.needs_manifests(strategy), with_status=rolling
    )
    mirrors = {m["metadata"]["name"]: m for m in await io.mirrors(namespace, name)}
    io.listener.mirrors_seen(namespace, mirrors.keys())
    await io.acknowledge_refreshes(list(mirrors.values()))
    return _Held(records, {str(r.bundle.id): r for r in records}, mirrors)


def _entries_from(status: Mapping[str, Any] | None) -> dict[str, progressive_sync.Entry]:
    """The rollout entries of an ApplicationSet's status as the hub holds it."""
    entries = (
        progressive_sync.Entry.from_json(raw)
        for raw in (status or {}).get("applicationStatus") or []
        if isinstance(raw, Mapping)
    )
    return {e.application: e for e in entries if e is not None}


def _decide(
    desired: plan.Plan,
    decision: progressive_sync.Decision | None,
    render: Callable[[], plan.Plan],
    held: _Held,
    refused: set[str],
) -> _Changes:
    tokens = decision.tokens if decision is not None else {}
    revisions = decision.revisions if decision is not None else {}

    def with_syncs(works: Sequence[plan.DesiredWork]) -> tuple[plan.DesiredWork, ...]:
        return tuple(w.with_sync(tokens.get(w.application), revisions.get(w.application, ())) for w in works)

    if tokens:
        desired = dataclasses.replace(desired, works=with_syncs(desired.works))
    work_diff = diff.diff(desired, [stored_works.existing(r) for r in held.records], held.mirrors.keys())
    # A target's work before its mirror, and the mirror once its cluster reported the work's
    # new spec (for a bounded time): a mirror carries the status known when it is written, so it
    # is created or changed with that status in one write instead of a write and a status patch,
    # each a full write of a large object.
    to_mirror = [
        w for w in desired.works if not stored_works.mirror_current(w, held.mirrors.get(w.application))
    ]
    sends: list[_Send] = [(w, True) for w in work_diff.creates if w.application not in refused]
    sends += [(w, False) for w, _ in work_diff.updates if w.application not in refused]
    if (to_mirror or sends) and not desired.rendered:
        rendered = {w.key: w for w in with_syncs(render().works)}
        to_mirror = [rendered[w.key] for w in to_mirror]
        sends = [(rendered[w.key], create) for w, create in sends]
    return _Changes(
        work_diff=work_diff,
        decision=decision,
        sends=sends,
        to_mirror=to_mirror,
        listed={w.application: held.by_id[e.work_id].bundle.version for w, e in work_diff.updates},
        notes=list(work_diff.notes),
    )


async def _send_and_mirror(
    io: WorksAndMirrors,
    in_flight: asyncio.Semaphore,
    key: book.AppSetKey,
    held: _Held,
    changes: _Changes,
    works_out: Callable[[], None],
) -> _Written:
    """Two streams at once, so that Maestro and the hub both work: the works, and the mirrors, each
    mirror once its own work went out and its status came back. Writes are bounded per stream: at
    fleet scale one pass carries thousands, and the hub and Maestro batch what arrives at once."""
    namespace = key[0]
    sends, to_mirror = changes.sends, changes.to_mirror
    mirrored = {w.application for w in to_mirror}
    gates = {w.application: asyncio.Event() for w, _ in sends}
    reported = {
        w.application: io.listener.expect(namespace, w.application, changes.listed.get(w.application, 0))
        for w, _ in sends
        if w.application in mirrored
    }
    holding: set[str] = set()  # targets of this pass holding a place in flight

    def landed(application: str) -> None:
        """The target's mirror was written, or none will be: its place in flight is free."""
        if application in holding:
            holding.discard(application)
            in_flight.release()

    async def publish(send: _Send) -> str | None:
        application = send[0].application
        refused: str | None = "not sent"
        try:
            await in_flight.acquire()
            holding.add(application)
            refused = await io.publish(send[0], create=send[1])
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
            await asyncio.wait((waiting,), timeout=io.settings.mirror_status_seconds)

    async def mirror(work: plan.DesiredWork) -> str | None:
        try:
            return await io.apply_mirror(work, held.mirrors.get(work.application))
        finally:
            landed(work.application)

    try:
        async with asyncio.TaskGroup() as group:  # one failing cancels the other; the pass is retried
            publishing = group.create_task(io.each(sends, publish))
            publishing.add_done_callback(lambda _: works_out())
            mirroring = group.create_task(io.each(to_mirror, mirror, ready=ready))
    finally:
        for application in list(holding):
            landed(application)
        io.listener.release(namespace, reported)  # those whose mirror was not written
    refusals, results = publishing.result(), mirroring.result()
    return _Written(
        sent={
            w.application: (w, create) for (w, create), r in zip(sends, refusals, strict=True) if r is None
        },
        blocked={w.application for w, r in zip(to_mirror, results, strict=True) if r is not None},
        mirrors_applied=sum(1 for r in results if r is None),
        problems=[r for r in refusals if r] + [r for r in results if r is not None],
    )


async def _retract(io: WorksAndMirrors, written: _Written) -> list[plan.DesiredWork]:
    """Delete again the works this pass created whose mirror the hub did not take."""
    retracted = [
        written.sent.pop(app)[0]
        for app in sorted(written.blocked)
        if app in written.sent and written.sent[app][1]
    ]
    await io.each(retracted, lambda w: io.delete_work(w.cluster, w.work_id))
    return retracted


def _record(
    status_book: book.StatusBook,
    key: book.AppSetKey,
    desired: plan.Plan,
    decision: progressive_sync.Decision | None,
    problems: list[str],
    current_status: Mapping[str, Any] | None,
) -> None:
    """The ApplicationSet's facts, from which the status controller writes its status."""
    entries = {e.application: e for e in decision.entries} if decision is not None else {}
    status_book.set_facts(
        key,
        book.Facts(
            apps=tuple(
                book.AppFact(
                    w.application,
                    w.target_revisions,
                    entries[w.application].to_json() if w.application in entries else None,
                )
                for w in desired.works
            ),
            target_errors=tuple(problems),
            rollout_progressing=decision.progressing if decision is not None else None,
            rollout_step=decision.progressing_step if decision is not None else None,
            rollout_config_issue=decision.config_issue if decision is not None else None,
        ),
        current=current_status,
    )
