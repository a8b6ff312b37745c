"""RollingSync's per-Application state machine, with Argo CD's rules (``applicationset/progressivesync``).

Called by the propagation pass (``convergence``) under ``strategy.type: RollingSync``, before it
diffs: every Application is delivered at once with its automated sync turned off
(``documents`` sets ``syncPolicy.automated.enabled: false``), and this module decides which of
them the pass asks to sync (a sync ``operation`` carried by its work, applied once by the
cluster's agent, which the cluster's Argo CD then runs). Its result is the ApplicationSet's
``status.applicationStatus`` (one ``Entry`` per Application that exists) and the
``RolloutProgressing`` condition. A pass, in Argo CD's order:

1. **observe** each existing Application against its previous entry: a new one starts ``Waiting``;
   a changed spec or changed sync revisions make it ``Waiting``; a ``Waiting`` one its cluster
   reports ``Synced`` becomes ``Healthy`` (or ``Progressing`` if not Healthy) without a sync; a
   ``Pending`` one becomes ``Progressing`` once a sync started after it became ``Pending`` (or it
   carries an ``InvalidSpecError``/``UnknownError`` condition and cannot sync); a ``Progressing``
   one becomes ``Healthy`` once ``Synced`` and ``Healthy``;
2. **steps**: step 1's Applications may sync, and each next step's once every Application of the
   steps before exists and is ``Healthy``; but after a change (an Application ``Waiting`` on a
   new spec or revision) none may until ``REFRESH_GRACE`` has passed and every Application's
   Argo CD reconciled since (Argo CD 3.6's ``ensureApplicationsReconciled``);
3. **progress**: ``Waiting`` Applications of those steps become ``Pending`` while fewer than
   ``maxUpdate`` of their step are ``Pending`` or ``Progressing``;
4. **sync**: each ``Pending`` Application of those steps carries a sync operation (``tokens``),
   pinned to the revisions its entry recorded (``revisions``).

What the pull model changes (each cluster's Argo CD reports through Maestro, its clock is its
own): a status counts for ``Waiting`` -> ``Healthy`` only once the cluster reported on the
Application's latest work and, after a spec change, reconciled it since; the first sync revision
a cluster reports is no revision change; times compare at the second they are written with, a
sync started in the second an Application became ``Pending`` counting as started after it; and
an Application ``Pending`` again while its work's operation has not started yet waits for that
one (Argo CD sets the operation again on its next passes; a work's operation is applied once).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from controllers.propagation import rollout

Status = Literal["Waiting", "Pending", "Progressing", "Healthy"]

#: an Application no step selects reports this step (Argo CD's ``getAppStep``)
NO_STEP = "-1"

_NEW = "No Application status found, defaulting status to Waiting"
_REVISION_AND_SPEC = "Application has pending changes (revision and spec differ), setting status to Waiting"
_REVISION = "Application has pending changes, setting status to Waiting"
_SPEC = "Application has pending changes (spec differs), setting status to Waiting"
_SPEC_CHANGES = (_REVISION_AND_SPEC, _SPEC)
_CHANGES = (*_SPEC_CHANGES, _REVISION)
#: Argo CD's ``--refresh-grace-period-seconds`` default: after a change, how long every step waits
#: at least before moving on
REFRESH_GRACE = datetime.timedelta(seconds=30)
_SYNCED_HEALTHY = "Application resource has synced, updating status to Healthy"
_SYNCED_PROGRESSING = "Application resource has synced, updating status to Progressing"
_PENDING = "Application moved to Pending status, watching for the Application resource to start Progressing"
_STARTED = {
    "Succeeded": (
        "Application resource completed a sync successfully, updating status from Pending to Progressing"
    ),
    "Failed": "Application resource completed a sync, updating status from Pending to Progressing",
    "Error": "Application resource completed a sync, updating status from Pending to Progressing",
}
_STARTED_RUNNING = "Application resource became Progressing, updating status from Pending to Progressing"
_CANNOT_SYNC = "Application resource has error and cannot sync, updating status to Progressing"
_BECAME_HEALTHY = "Application resource became Healthy, updating status from Progressing to Healthy"
_ERROR_CONDITIONS = ("InvalidSpecError", "UnknownError")
SYNC_REASON = "ApplicationSet RollingSync triggered a sync of this Application resource"


@dataclasses.dataclass(frozen=True)
class Entry:
    """One ``status.applicationStatus`` entry."""

    application: str
    status: Status
    step: str
    message: str
    last_transition: datetime.datetime
    target_revisions: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "application": self.application,
            "status": self.status,
            "step": self.step,
            "message": self.message,
            "lastTransitionTime": format_time(self.last_transition),
            "targetRevisions": list(self.target_revisions),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Entry | None:
        """An entry as the hub holds it, or ``None`` when it is not one this module wrote."""
        status, when = raw.get("status"), parse_time(raw.get("lastTransitionTime"))
        if status not in ("Waiting", "Pending", "Progressing", "Healthy") or when is None:
            return None
        return cls(
            str(raw.get("application") or ""),
            status,
            str(raw.get("step") or ""),
            str(raw.get("message") or ""),
            when,
            tuple(str(r) for r in raw.get("targetRevisions") or ()),
        )


@dataclasses.dataclass(frozen=True)
class Observed:
    """One desired Application, as the pass finds it."""

    application: str
    labels: Mapping[str, str]
    #: its work is in Maestro (in Argo CD: the Application exists)
    exists: bool
    #: its Application, operation aside, differs from the one its work holds
    spec_changed: bool = False
    #: the cluster reported on the work's current version
    reported: bool = False
    #: the hub Application ``status`` made of the cluster's last report (``aggregate``)
    status: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    #: the sync operation its work carries (``Decision.tokens``), if any
    token: str | None = None

    @property
    def sync(self) -> str:
        return str((self.status.get("sync") or {}).get("status") or "Unknown")

    @property
    def health(self) -> str:
        return str((self.status.get("health") or {}).get("status") or "Unknown")

    @property
    def revisions(self) -> tuple[str, ...]:
        sync = self.status.get("sync") or {}
        many = sync.get("revisions")
        if isinstance(many, list) and many:
            return tuple(str(r) for r in many)
        one = sync.get("revision")
        return (str(one),) if one else ()

    @property
    def reconciled_at(self) -> datetime.datetime | None:
        return parse_time(self.status.get("reconciledAt"))

    @property
    def operation(self) -> tuple[str, datetime.datetime | None]:
        state = self.status.get("operationState") or {}
        return str(state.get("phase") or ""), parse_time(state.get("startedAt"))

    @property
    def has_error(self) -> bool:
        return any(c.get("type") in _ERROR_CONDITIONS for c in self.status.get("conditions") or ())


@dataclasses.dataclass(frozen=True)
class Decision:
    #: ``status.applicationStatus``, by Application name
    entries: tuple[Entry, ...]
    #: Application -> the sync operation its work carries (an opaque, stable token)
    tokens: Mapping[str, str]
    #: Application -> the revisions a sync asked for this pass is pinned to
    revisions: Mapping[str, tuple[str, ...]]
    #: the 1-based step being rolled out, ``None`` once the rollout completed
    progressing_step: int | None
    #: what ``InvalidRolloutConfig`` says is wrong with the steps ("" when nothing)
    config_issue: str = ""

    @property
    def progressing(self) -> bool:
        return self.progressing_step is not None


def decide(
    strategy: rollout.Strategy,
    observed: Sequence[Observed],
    previous: Mapping[str, Entry],
    now: datetime.datetime,
) -> Decision:
    """One pass of the rollout (see the module's docstring); ``now`` is truncated to the second."""
    now = now.replace(microsecond=0)
    ordered = sorted(observed, key=lambda o: o.application)
    memberships = {o.application: strategy.steps_of(o.labels) for o in ordered}
    first_step = {name: steps[0] for name, steps in memberships.items() if steps}
    existing = [o for o in ordered if o.exists]
    changed_before = _latest_change(previous.values())
    entries = {o.application: _observe(o, previous.get(o.application), first_step, now) for o in existing}
    changed = changed_before or _latest_change(entries.values())
    # As Argo CD (3.6): after a change, no step moves until every Application's Argo CD reconciled
    # since, and not before a grace period (Argo CD then asks for refreshes; here each cluster's
    # Argo CD reconciles a delivered change at once, and others at its own resync).
    settled = changed is None or (
        now - changed >= REFRESH_GRACE
        and all(o.reconciled_at is not None and o.reconciled_at >= changed for o in existing)
    )
    may_sync = _steps_to_sync(strategy, memberships, entries) if settled else set()
    entries = _progress(strategy, entries, first_step, may_sync, now)
    tokens: dict[str, str] = {}
    revisions: dict[str, tuple[str, ...]] = {}
    for o in existing:
        entry = entries[o.application]
        if entry.status == "Pending" and o.application in may_sync:
            asked = _unanswered(o)
            if asked is not None and asked <= entry.last_transition:
                # the sync its work already asks for has not started: it is the one this Pending
                # waits for (a second, identical operation would be lost while the first runs)
                entries[o.application] = entry = dataclasses.replace(entry, last_transition=asked)
            tokens[o.application] = format_time(entry.last_transition)
            revisions[o.application] = entry.target_revisions
        elif o.token and not o.spec_changed:
            tokens[o.application] = o.token  # what its work carries stays: no write, no second sync
    return Decision(
        tuple(entries.values()),
        tokens,
        revisions,
        _progressing_step(strategy, entries.values()),
        config_issue(len(strategy.steps), memberships),
    )


def config_issue(steps: int, memberships: Mapping[str, tuple[int, ...]]) -> str:
    """Argo CD's ``InvalidRolloutConfig`` message for the generated Applications' step
    ``memberships`` (0-based): one selected by several steps, else steps selecting none ("" when
    neither; the operators and maxUpdate it also checks are refused before)."""
    doubled = {name: found for name, found in sorted(memberships.items()) if len(found) > 1}
    if doubled:
        names = list(doubled)
        numbers = ["-".join(str(i + 1) for i in found) for found in doubled.values()]
        if len(names) == 1:
            return f"Application '{names[0]}' is selected by multiple steps: ({numbers[0]})"
        quoted, grouped = "', '".join(names), "), (".join(numbers)
        return f"Applications '{quoted}' are selected by multiple steps: [({grouped})]"
    selecting = {i for found in memberships.values() for i in found}
    empty = [str(i + 1) for i in range(steps) if i not in selecting]
    return f"Steps [{' '.join(empty)}] have no applications matching their criteria" if empty else ""


def _observe(
    o: Observed, before: Entry | None, first_step: Mapping[str, int], now: datetime.datetime
) -> Entry:
    step = str(first_step[o.application] + 1) if o.application in first_step else NO_STEP
    current = before or Entry(o.application, "Waiting", step, _NEW, now, o.revisions)
    entry = dataclasses.replace(current, step=step)
    # The first revision a cluster reports (or one it stops reporting) is no change: its Argo CD
    # had not compared the Application yet.
    revisions_changed = (
        bool(current.target_revisions and o.revisions) and current.target_revisions != o.revisions
    )
    if not current.target_revisions and o.revisions:
        entry = dataclasses.replace(entry, target_revisions=o.revisions)
    if revisions_changed or o.spec_changed:
        message = _SPEC if not revisions_changed else _REVISION_AND_SPEC if o.spec_changed else _REVISION
        entry = dataclasses.replace(
            entry, status="Waiting", message=message, last_transition=now, target_revisions=o.revisions
        )
    if entry.status == "Waiting":
        if o.sync == "Synced" and _fresh(o, entry):
            if o.health == "Healthy":
                return _move(entry, "Healthy", _SYNCED_HEALTHY, now)
            return _move(entry, "Progressing", _SYNCED_PROGRESSING, now)
        return entry
    if current.status == "Pending" and _after(o.reconciled_at, entry.last_transition, missing=True):
        phase, started = o.operation
        if _after(started, current.last_transition, missing=False):
            entry = _move(entry, "Progressing", _STARTED.get(phase, _STARTED_RUNNING), now)
        elif o.has_error:
            entry = _move(entry, "Progressing", _CANNOT_SYNC, now)
    if current.status == "Progressing" and o.health == "Healthy" and o.sync == "Synced":
        entry = _move(entry, "Healthy", _BECAME_HEALTHY, now)
    return entry


def _latest_change(entries: Iterable[Entry]) -> datetime.datetime | None:
    """When the last Application still Waiting on a change (not a new one) became Waiting."""
    times = [e.last_transition for e in entries if e.status == "Waiting" and e.message in _CHANGES]
    return max(times, default=None)


def _unanswered(o: Observed) -> datetime.datetime | None:
    """When the sync operation its work carries was asked for, if its Application is unchanged
    since and no sync started after."""
    asked = parse_time(o.token)
    if asked is None or o.spec_changed:
        return None
    started = o.operation[1]
    return asked if started is None or started < asked else None


def _fresh(o: Observed, entry: Entry) -> bool:
    """Whether the cluster's report is about the Application as it now is."""
    if not o.reported:
        return False
    return entry.message not in _SPEC_CHANGES or _after(o.reconciled_at, entry.last_transition, missing=False)


def _after(when: datetime.datetime | None, since: datetime.datetime, *, missing: bool) -> bool:
    return missing if when is None else when >= since


def _move(entry: Entry, status: Status, message: str, now: datetime.datetime) -> Entry:
    return dataclasses.replace(entry, status=status, message=message, last_transition=now)


def _steps_to_sync(
    strategy: rollout.Strategy, memberships: Mapping[str, tuple[int, ...]], entries: Mapping[str, Entry]
) -> set[str]:
    """The Applications of step 1, and of each next step while the steps before are all Healthy."""
    allowed: set[str] = set()
    for index in range(len(strategy.steps)):
        members = [name for name, steps in memberships.items() if index in steps]
        allowed.update(members)
        if not all(name in entries and entries[name].status == "Healthy" for name in members):
            break
    return allowed


def _progress(
    strategy: rollout.Strategy,
    entries: Mapping[str, Entry],
    first_step: Mapping[str, int],
    may_sync: set[str],
    now: datetime.datetime,
) -> dict[str, Entry]:
    # As in Argo CD, an Application of no step counts in the first step's total and updates.
    def index(name: str) -> int:
        return first_step.get(name, 0)

    totals = [0] * len(strategy.steps)
    updating = [0] * len(strategy.steps)
    for name, entry in entries.items():
        totals[index(name)] += 1
        updating[index(name)] += entry.status in ("Pending", "Progressing")
    result: dict[str, Entry] = {}
    for name, entry in entries.items():
        step = index(name)
        limit = strategy.steps[step].budget(totals[step])
        if entry.status == "Waiting" and name in may_sync and (limit is None or updating[step] < limit):
            entry = _move(entry, "Pending", _PENDING, now)
            updating[step] += 1
        result[name] = entry
    return result


def _progressing_step(strategy: rollout.Strategy, entries: Sequence[Entry] | Any) -> int | None:
    done: dict[str, bool] = {}
    for entry in entries:
        done[entry.step] = done.get(entry.step, True) and entry.status == "Healthy"
    for index in range(len(strategy.steps)):
        if not done.get(str(index + 1), True):
            return index + 1
    return None


def sync_operation(spec: Mapping[str, Any], prune: bool) -> dict[str, Any]:
    """The operation Argo CD's ApplicationSet controller sets to sync an Application of ``spec``
    (its ``syncPolicy``'s retry and sync options; ``prune`` from its automated policy)."""
    policy = spec.get("syncPolicy")
    sync: dict[str, Any] = {}
    operation: dict[str, Any] = {
        "initiatedBy": {"username": "applicationset-controller", "automated": True},
        "info": [{"name": "Reason", "value": SYNC_REASON}],
        "sync": sync,
        "retry": {"limit": 5},
    }
    if isinstance(policy, Mapping):
        if policy.get("retry") is not None:
            operation["retry"] = policy["retry"]
        if policy.get("syncOptions") is not None:
            sync["syncOptions"] = policy["syncOptions"]
        if prune:
            sync["prune"] = True
    return operation


def pinned(
    operation: Mapping[str, Any], revisions: Sequence[str], *, multiple_sources: bool
) -> dict[str, Any]:
    """``operation`` syncing ``revisions`` (those its step was let through at; none: as the
    Application's spec says), so that a commit landing mid-rollout is not synced unvalidated."""
    sync = dict(operation.get("sync") or {})
    if multiple_sources and revisions:
        sync["revisions"] = list(revisions)
    elif revisions:
        sync["revision"] = revisions[0]
    return {**operation, "sync": sync}


def automated_prune(spec: Mapping[str, Any]) -> bool:
    """``automated.prune`` of an automated sync policy that is on (Argo CD prunes with it)."""
    automated = (spec.get("syncPolicy") or {}).get("automated")
    if not isinstance(automated, Mapping) or automated.get("enabled") is False:
        return False
    return bool(automated.get("prune"))


def disable_automated_sync(spec: dict[str, Any]) -> None:
    """Turn an automated sync policy off in place (``enabled: false``), as Argo CD does under RollingSync."""
    automated = (spec.get("syncPolicy") or {}).get("automated")
    if isinstance(automated, dict):
        automated["enabled"] = False


def format_time(when: datetime.datetime) -> str:
    return when.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(raw: Any) -> datetime.datetime | None:
    if not isinstance(raw, str) or not raw:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.replace(microsecond=0)
