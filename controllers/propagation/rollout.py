"""Progressive rollout (``spec.strategy``): which pending changes may be sent to clusters now.

Called by the propagation pass (``convergence``) after ``diff.diff``: it builds one ``RolloutTarget`` per
desired Application (is a create/update waiting? what did the cluster last report?) and sends only
the changes in ``RolloutDecision.allowed``; ``RolloutDecision.statuses`` become the
ApplicationSet's ``status.applicationStatus``.

Supported, as Argo CD users know it:

- ``type: AllAtOnce`` (the default): every change goes out at once.
- ``type: RollingSync`` with ``rollingSync.steps[].matchExpressions`` on the Application's labels
  (``In``, ``NotIn``, ``Exists``, ``DoesNotExist``; all must hold) and ``maxUpdate`` as an integer
  or a percentage of the step's Applications (rounded down, at least 1 for a non-zero percentage;
  default 100%; 0 holds the step). An Application belongs to the first step that selects it.
  A step starts only when every Application of the earlier steps is Synced and Healthy at its
  latest spec; Applications of no step are never changed (they report ``Waiting``).
- ``deletionOrder: Reverse`` (with RollingSync): ``deletion_groups`` orders deletions from the
  last step to the first, Applications of no step first.

Difference from Argo CD: there, RollingSync turns auto-sync off and triggers syncs itself. In the
pull model a "change" is delivering the new Application spec to the cluster; the worker's own Argo
CD then syncs it under the Application's ``syncPolicy`` (so keep ``automated`` on, or the step
never becomes Synced). ``rollingSync.defaultPrune`` therefore has no meaning here and is rejected.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from controllers.propagation import errors, selectors

RolloutError = errors.RolloutError

Status = Literal["Waiting", "Pending", "Progressing", "Healthy"]


@dataclasses.dataclass(frozen=True)
class RolloutTarget:
    """One desired Application, as the rollout sees it."""

    application: str
    labels: Mapping[str, str]
    #: a create or update is waiting to be sent
    pending_change: bool
    #: the cluster's last report is about the spec last sent (not an older one)
    status_current: bool = True
    sync_status: str = "Unknown"
    health_status: str = "Unknown"

    @property
    def done(self) -> bool:
        return (
            not self.pending_change
            and self.status_current
            and self.sync_status == "Synced"
            and self.health_status == "Healthy"
        )

    @property
    def in_flight(self) -> bool:
        """Sent, and not Synced+Healthy yet: it takes one of its step's ``maxUpdate`` slots."""
        return not self.pending_change and not self.done


@dataclasses.dataclass(frozen=True)
class Step:
    match_expressions: tuple[Mapping[str, Any], ...]
    max_update: int | str | None = None

    def selects(self, labels: Mapping[str, str]) -> bool:
        return selectors.match_expressions(list(self.match_expressions), labels)

    def budget(self, members: int) -> int:
        """How many of the step's ``members`` may be in flight at once."""
        value = self.max_update
        if value is None:
            return members
        if isinstance(value, int):
            return value
        percent = int(value[:-1])
        scaled = math.floor(members * percent / 100)
        return max(scaled, 1) if percent > 0 else 0


@dataclasses.dataclass(frozen=True)
class Strategy:
    type: str = "AllAtOnce"
    steps: tuple[Step, ...] = ()
    deletion_order: str = "AllAtOnce"

    def step_of(self, labels: Mapping[str, str]) -> int | None:
        """0-based index of the first step selecting ``labels``."""
        return next((i for i, s in enumerate(self.steps) if s.selects(labels)), None)


@dataclasses.dataclass(frozen=True)
class AppRolloutStatus:
    application: str
    status: Status
    #: 1-based step number as a string, "" for an Application no step selects
    step: str
    message: str


@dataclasses.dataclass(frozen=True)
class RolloutDecision:
    #: Applications whose pending change may be sent now
    allowed: frozenset[str]
    statuses: tuple[AppRolloutStatus, ...]
    #: 1-based step now rolling out, ``None`` when nothing is pending or in flight
    current_step: int | None
    warnings: tuple[str, ...] = ()

    @property
    def progressing(self) -> bool:
        return any(s.status != "Healthy" for s in self.statuses)


def parse_strategy(spec: Mapping[str, Any]) -> Strategy:
    """``spec.strategy`` of an ApplicationSet, validated; raises ``RolloutError`` naming the field."""
    raw = spec.get("strategy") or {}
    if not isinstance(raw, Mapping):
        raise RolloutError("spec.strategy: must be a map with type (AllAtOnce or RollingSync)")
    kind = raw.get("type") or "AllAtOnce"
    deletion_order = raw.get("deletionOrder") or "AllAtOnce"
    if deletion_order not in ("AllAtOnce", "Reverse"):
        raise RolloutError(f"spec.strategy.deletionOrder: {deletion_order!r} is not AllAtOnce or Reverse")
    if kind == "AllAtOnce":
        if deletion_order == "Reverse":
            raise RolloutError("spec.strategy.deletionOrder: Reverse needs type: RollingSync and its steps")
        return Strategy()
    if kind != "RollingSync":
        raise RolloutError(f"spec.strategy.type: {kind!r} is not supported; use AllAtOnce or RollingSync")
    rolling = raw.get("rollingSync") or {}
    if not isinstance(rolling, Mapping):
        raise RolloutError("spec.strategy.rollingSync: must be a map with steps")
    if "defaultPrune" in rolling:
        raise RolloutError(
            "spec.strategy.rollingSync.defaultPrune: not supported; in the pull model each cluster's Argo CD "
            "syncs (and prunes) under the Application's own syncPolicy.automated.prune"
        )
    raw_steps = rolling.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise RolloutError("spec.strategy.rollingSync.steps: RollingSync needs at least one step")
    steps = [_parse_step(s, f"spec.strategy.rollingSync.steps[{i}]") for i, s in enumerate(raw_steps)]
    return Strategy("RollingSync", tuple(steps), deletion_order)


def _parse_step(raw: Any, path: str) -> Step:
    if not isinstance(raw, Mapping):
        raise RolloutError(f"{path}: must be a map with matchExpressions and optional maxUpdate")
    expressions = raw.get("matchExpressions") or []
    try:
        selectors.match_expressions(expressions, {}, path=f"{path}.matchExpressions")
    except errors.SelectorError as exc:
        raise RolloutError(str(exc)) from None
    max_update = raw.get("maxUpdate")
    if isinstance(max_update, bool) or not (
        max_update is None
        or (isinstance(max_update, int) and max_update >= 0)
        or (isinstance(max_update, str) and max_update.endswith("%") and max_update[:-1].isdigit())
    ):
        raise RolloutError(
            f"{path}.maxUpdate: {max_update!r} must be a non-negative integer or a percentage such as '25%'"
        )
    return Step(tuple(expressions), max_update)


def plan_rollout(strategy: Strategy, targets: Sequence[RolloutTarget]) -> RolloutDecision:
    """Which pending changes go out now, and every target's Argo CD-style rollout status."""
    ordered = sorted(targets, key=lambda t: t.application)
    if strategy.type != "RollingSync":
        return _all_at_once(ordered)

    warnings: list[str] = []
    members: list[list[RolloutTarget]] = [[] for _ in strategy.steps]
    unselected: list[RolloutTarget] = []
    for target in ordered:
        matching = [i for i, s in enumerate(strategy.steps) if s.selects(target.labels)]
        if not matching:
            unselected.append(target)
            continue
        if len(matching) > 1:
            numbers = ", ".join(str(i + 1) for i in matching)
            warnings.append(
                f"Application {target.application!r} matches steps {numbers}; "
                f"it rolls out in step {matching[0] + 1}"
            )
        members[matching[0]].append(target)

    allowed: set[str] = set()
    statuses: list[AppRolloutStatus] = []
    current: int | None = None
    gate_open = True
    for index, (step, group) in enumerate(zip(strategy.steps, members, strict=True)):
        number = str(index + 1)
        budget = step.budget(len(group)) - sum(t.in_flight for t in group)
        for target in group:
            if not target.pending_change:
                statuses.append(_reported(target, number))
            elif not gate_open:
                statuses.append(
                    _waiting(
                        target,
                        number,
                        f"waiting for the Applications of steps before {number} to become Healthy",
                    )
                )
            elif budget > 0:
                budget -= 1
                allowed.add(target.application)
                statuses.append(
                    AppRolloutStatus(
                        target.application,
                        "Pending",
                        number,
                        f"change is being sent to the cluster (step {number})",
                    )
                )
            else:
                limit = step.max_update if step.max_update is not None else "100%"
                detail = (
                    "maxUpdate is 0: raise it to let this step proceed"
                    if step.budget(len(group)) == 0
                    else (f"step {number} already has maxUpdate ({limit}) Applications in progress")
                )
                statuses.append(_waiting(target, number, detail))
        step_done = all(t.done for t in group)
        if gate_open and not step_done and current is None:
            current = index + 1
        gate_open = gate_open and step_done
    for target in unselected:
        if target.pending_change:
            statuses.append(
                _waiting(
                    target,
                    "",
                    "no RollingSync step selects this Application's labels, "
                    "so it is never updated; add a step",
                )
            )
        else:
            statuses.append(_reported(target, ""))
    return RolloutDecision(frozenset(allowed), tuple(statuses), current, tuple(warnings))


def _all_at_once(targets: Sequence[RolloutTarget]) -> RolloutDecision:
    statuses = [
        AppRolloutStatus(t.application, "Pending", "1", "change is being sent to the cluster")
        if t.pending_change
        else _reported(t, "1")
        for t in targets
    ]
    busy = any(not t.done for t in targets)
    return RolloutDecision(
        frozenset(t.application for t in targets if t.pending_change), tuple(statuses), 1 if busy else None
    )


def _reported(target: RolloutTarget, step: str) -> AppRolloutStatus:
    if target.done:
        return AppRolloutStatus(target.application, "Healthy", step, "Application is Synced and Healthy")
    if not target.status_current:
        return AppRolloutStatus(
            target.application, "Pending", step, "waiting for the cluster to report on the new spec"
        )
    return AppRolloutStatus(
        target.application,
        "Progressing",
        step,
        f"Application is {target.sync_status} and {target.health_status}",
    )


def _waiting(target: RolloutTarget, step: str, detail: str) -> AppRolloutStatus:
    return AppRolloutStatus(target.application, "Waiting", step, detail)


def deletion_groups(strategy: Strategy, doomed: Sequence[tuple[str, Mapping[str, str]]]) -> list[list[str]]:
    """``(application, labels)`` to delete, grouped in the order to delete them: one group for
    AllAtOnce; for Reverse, Applications of no step first, then the last step back to the first.
    The caller deletes a group and waits for it to be gone before the next."""
    names = sorted(doomed, key=lambda item: item[0])
    if strategy.deletion_order != "Reverse":
        return [[name for name, _ in names]] if names else []
    by_step: dict[int, list[str]] = {}
    for name, labels in names:
        step = strategy.step_of(labels)
        by_step.setdefault(len(strategy.steps) if step is None else step, []).append(name)
    return [by_step[k] for k in sorted(by_step, reverse=True)]
