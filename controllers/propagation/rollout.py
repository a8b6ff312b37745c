"""Progressive rollout (``spec.strategy``): its steps, and the order of deletions.

``parse_strategy`` reads and checks ``spec.strategy``; ``progressive_sync.decide`` runs a
RollingSync pass over the steps; ``deletion_groups`` orders deletions.

Supported, as Argo CD defines them:

- ``type: AllAtOnce`` (the default): every Application is delivered with its own sync policy.
- ``type: RollingSync`` with ``rollingSync.steps[].matchExpressions`` on the Application's labels
  (``In`` and ``NotIn``, as Argo CD; all must hold; a step without expressions selects every
  Application) and ``maxUpdate`` as an integer or a percentage of the step's Applications.
  An Application belongs to the first step that selects it (and counts in every step selecting
  it when the controller decides whether the next step may start).
- ``deletionOrder: Reverse`` (with RollingSync): ``deletion_groups`` orders deletions from the
  last step to the first, Applications of no step first.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from controllers.propagation import errors, selectors

RolloutError = errors.RolloutError


@dataclasses.dataclass(frozen=True)
class Step:
    match_expressions: tuple[Mapping[str, Any], ...]
    max_update: int | str | None = None

    def selects(self, labels: Mapping[str, str]) -> bool:
        return selectors.match_expressions(list(self.match_expressions), labels)

    def budget(self, members: int) -> int | None:
        """How many of the step's ``members`` may be Pending or Progressing at once (``None``:
        all): a percentage rounds down, and a non-zero one lets at least one through."""
        value = self.max_update
        if value is None:
            return None
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
        return next(iter(self.steps_of(labels)), None)

    def steps_of(self, labels: Mapping[str, str]) -> tuple[int, ...]:
        """0-based indexes of every step selecting ``labels``."""
        return tuple(i for i, s in enumerate(self.steps) if s.selects(labels))


def is_rolling_sync(spec: Mapping[str, Any]) -> bool:
    """Whether ``spec`` asks for RollingSync with steps (Argo CD's ``RollingSyncStrategyEnabled``)."""
    raw = spec.get("strategy")
    if not isinstance(raw, Mapping) or raw.get("type") != "RollingSync":
        return False
    rolling = raw.get("rollingSync")
    return isinstance(rolling, Mapping) and bool(rolling.get("steps"))


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
    for i, expression in enumerate(expressions):
        if expression.get("operator") not in ("In", "NotIn"):
            raise RolloutError(
                f"{path}.matchExpressions[{i}].operator: {expression.get('operator')!r} is not supported in "
                "RollingSync steps (Argo CD selects Applications with In and NotIn only); use In or NotIn"
            )
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
