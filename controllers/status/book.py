"""What both controllers know about each ApplicationSet, kept in memory for its status rollup.

The propagation handler records the ``Facts`` of every pass (which Applications the ApplicationSet
has, what failed to plan, how a RollingSync stands); the status handler records each hub
Application's latest ``status`` as it writes it. ``take_dirty`` names the ApplicationSets whose
rollup may have changed since last asked, and ``rollup`` computes it with
``rollup.application_set_status``, carrying timestamps over from the previous rollup so an
unchanged ApplicationSet yields an identical status (which ``batching.WriteBatcher`` then skips).

Pure bookkeeping, no I/O: both handlers run in one process and share one ``StatusBook``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from controllers.status import rollup

#: ``(namespace, name)`` of an ApplicationSet
AppSetKey = tuple[str, str]


@dataclasses.dataclass(frozen=True)
class AppFact:
    """One Application the ApplicationSet should have."""

    name: str
    target_revisions: tuple[str, ...] = ()
    #: its RollingSync ``applicationStatus`` entry, under RollingSync only
    rollout: Mapping[str, Any] | None = None


@dataclasses.dataclass(frozen=True)
class Facts:
    """What the propagation controller found on its last pass over one ApplicationSet."""

    apps: tuple[AppFact, ...] = ()
    target_errors: tuple[str, ...] = ()
    generation_error: str | None = None
    #: ``None`` without a RollingSync strategy
    rollout_progressing: bool | None = None
    rollout_step: int | None = None
    #: what is wrong with the RollingSync steps ("" when nothing), ``None`` without one
    rollout_config_issue: str | None = None


class StatusBook:
    """Facts and Application statuses per ApplicationSet, and which rollups are out of date."""

    def __init__(self) -> None:
        self._facts: dict[AppSetKey, Facts] = {}
        self._statuses: dict[AppSetKey, dict[str, Mapping[str, Any]]] = {}
        self._previous: dict[AppSetKey, Mapping[str, Any]] = {}
        self._dirty: dict[AppSetKey, None] = {}  # ordered set: oldest change first

    def set_facts(self, key: AppSetKey, facts: Facts, *, current: Mapping[str, Any] | None = None) -> None:
        """Record a pass; ``current`` is the ApplicationSet's status as read from the hub, used for
        timestamps until this process has written a rollup of its own."""
        if current and key not in self._previous:
            self._previous[key] = current
        if self._facts.get(key) != facts:
            self._facts[key] = facts
            self._dirty[key] = None

    def facts(self, key: AppSetKey) -> Facts | None:
        return self._facts.get(key)

    def set_app_status(self, key: AppSetKey, application: str, status: Mapping[str, Any]) -> bool:
        """Record an Application's status; ``True`` when it changed."""
        statuses = self._statuses.setdefault(key, {})
        if statuses.get(application) == status:
            return False
        statuses[application] = status
        self._dirty[key] = None
        return True

    def app_status(self, key: AppSetKey, application: str) -> Mapping[str, Any] | None:
        return self._statuses.get(key, {}).get(application)

    def drop_app_status(self, key: AppSetKey, application: str) -> None:
        if self._statuses.get(key, {}).pop(application, None) is not None:
            self._dirty[key] = None

    def drop(self, key: AppSetKey) -> None:
        """The ApplicationSet is gone: forget everything about it."""
        self._facts.pop(key, None)
        self._statuses.pop(key, None)
        self._previous.pop(key, None)
        self._dirty.pop(key, None)

    def take_dirty(self) -> list[AppSetKey]:
        """The ApplicationSets whose rollup may have changed since the last call."""
        keys = list(self._dirty)
        self._dirty.clear()
        return keys

    def rollup(self, key: AppSetKey, *, now: str) -> rollup.Rollup | None:
        """The ApplicationSet's status, or ``None`` before the propagation controller's first pass
        (without facts, it is unknown which Applications belong to it)."""
        facts = self._facts.get(key)
        if facts is None:
            return None
        statuses = self._statuses.get(key, {})
        apps = [
            rollup.AppEntry(
                name=app.name,
                status=statuses.get(app.name),
                target_revisions=app.target_revisions,
                rollout=app.rollout,
            )
            for app in facts.apps
        ]
        result = rollup.application_set_status(
            key[0],
            apps,
            now=now,
            target_errors=facts.target_errors,
            generation_error=facts.generation_error,
            rollout_progressing=facts.rollout_progressing,
            rollout_step=facts.rollout_step,
            rollout_config_issue=facts.rollout_config_issue,
            previous=self._previous.get(key),
        )
        self._previous[key] = result.status
        return result
