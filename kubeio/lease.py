"""Leader election on a ``coordination.k8s.io/v1`` Lease: the settings and the decisions (pure).

The rules are client-go's ``leaderelection``: the holder writes ``renewTime`` every retry period;
a candidate never trusts the timestamps in the Lease (another machine's clock wrote them) and
takes the Lease only when its holder is empty (released) or when the record has not changed for
the record's ``leaseDurationSeconds`` by the candidate's own monotonic clock since it first saw
that record. Every write carries the ``resourceVersion`` it was decided on, so of two candidates
deciding at once the API server lets one write and answers the other 409.

The I/O (reads, writes, the loops and timeouts) is ``kubeio.leader``.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import socket
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

API = "/apis/coordination.k8s.io/v1"
#: how far a standby's wait between tries may stretch past the retry period (10-20 % jitter keeps
#: replicas started together from trying in step)
JITTER = 0.2


class SettingsError(ValueError):
    """A setting that cannot work; ``field`` names it (``lease_duration`` ...)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def default_identity() -> str:
    """This replica's name in the Lease: its pod's name (the hostname in a pod) and a random suffix,
    so a replica restarted under the same name is a new candidate, never the old holder."""
    host = os.environ.get("POD_NAME") or socket.gethostname() or "replica"
    return f"{host}_{uuid.uuid4().hex[:12]}"


@dataclasses.dataclass(frozen=True)
class LeaderElection:
    """Who competes for which Lease, and how fast.

    ``lease_duration``: how long standbys wait, from when they last saw the Lease change, before
    taking it. ``renew_deadline``: how long the leader keeps trying to renew, from the start of
    its last successful renewal, before it stops leading; shorter than ``lease_duration`` by a
    margin, so a leader cut off from the API server stops before any standby may take over.
    ``retry_period``: how often the leader renews and standbys try.
    """

    name: str
    namespace: str
    identity: str = dataclasses.field(default_factory=default_identity)
    lease_duration: int = 15
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise problems[0]

    def problems(self) -> list[SettingsError]:
        out: list[SettingsError] = []
        for field in ("name", "namespace"):
            if not _dns_label(getattr(self, field)):
                out.append(
                    SettingsError(
                        field,
                        f"the lease {field} {getattr(self, field)!r} is not a Kubernetes name: lower-case "
                        "letters, digits, '-' and '.', starting and ending with a letter or digit",
                    )
                )
        if not self.identity:
            out.append(SettingsError("identity", "the identity is empty: give each replica a name"))
        if self.lease_duration < 1:
            out.append(SettingsError("lease_duration", "the lease duration must be at least 1 second"))
        if self.retry_period <= 0:
            out.append(SettingsError("retry_period", "the retry period must be more than 0 seconds"))
        if self.renew_deadline <= 0:
            out.append(SettingsError("renew_deadline", "the renew deadline must be more than 0 seconds"))
        elif self.renew_deadline >= self.lease_duration:
            out.append(
                SettingsError(
                    "renew_deadline",
                    f"the renew deadline ({self.renew_deadline:g}s) must be shorter than the lease "
                    f"duration ({self.lease_duration}s), or a leader cut off from the API server "
                    "could still be acting when a standby takes over: lower it or raise the duration",
                )
            )
        if self.retry_period > 0 and self.renew_deadline <= (1 + JITTER) * self.retry_period:
            out.append(
                SettingsError(
                    "renew_deadline",
                    f"the renew deadline ({self.renew_deadline:g}s) must be longer than "
                    f"{1 + JITTER:g} x the retry period ({self.retry_period:g}s), or one slow renewal "
                    "would end the leadership: lower the retry period or raise the deadline",
                )
            )
        return out

    @property
    def path(self) -> str:
        return f"{API}/namespaces/{self.namespace}/leases/{self.name}"

    @property
    def collection(self) -> str:
        return f"{API}/namespaces/{self.namespace}/leases"

    def describe(self) -> str:
        return f"lease {self.namespace}/{self.name}"


def _dns_label(name: str) -> bool:
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-.")
    return 0 < len(name) <= 253 and set(name) <= allowed and name[0].isalnum() and name[-1].isalnum()


@dataclasses.dataclass(frozen=True)
class Record:
    """A Lease's ``spec``, as leader election reads and writes it."""

    holder: str
    lease_duration: int
    acquire_time: str = ""
    renew_time: str = ""
    transitions: int = 0

    @classmethod
    def from_lease(cls, lease: Mapping[str, Any]) -> Record:
        spec = lease.get("spec") or {}
        return cls(
            holder=str(spec.get("holderIdentity") or ""),
            lease_duration=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=str(spec.get("acquireTime") or ""),
            renew_time=str(spec.get("renewTime") or ""),
            transitions=int(spec.get("leaseTransitions") or 0),
        )

    def spec(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": self.lease_duration,
            "leaseTransitions": self.transitions,
        }
        if self.acquire_time:
            out["acquireTime"] = self.acquire_time
        if self.renew_time:
            out["renewTime"] = self.renew_time
        return out


def lease_object(settings: LeaderElection, record: Record, resource_version: str = "") -> dict[str, Any]:
    """The Lease to create (no ``resource_version``) or to replace on exactly that version."""
    metadata: dict[str, Any] = {"name": settings.name, "namespace": settings.namespace}
    if resource_version:
        metadata["resourceVersion"] = resource_version
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": record.spec(),
    }


def micro_time(at: datetime | None = None) -> str:
    """A ``MicroTime`` as the API server writes it (RFC 3339, microseconds, UTC)."""
    return (at or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclasses.dataclass(frozen=True)
class Sighting:
    """A record and when (this process's monotonic clock) it was first seen as it is."""

    record: Record
    at: float

    def expires(self) -> float:
        return self.at + self.record.lease_duration


def observe(previous: Sighting | None, record: Record, now: float) -> Sighting:
    """The sighting after reading ``record`` at ``now``: unchanged records keep their first time
    (that is what the lease duration counts from); any change starts the count again."""
    if previous is not None and previous.record == record:
        return previous
    return Sighting(record, now)


class Move(enum.Enum):
    CREATE = "create"  # no Lease yet
    ACQUIRE = "acquire"  # released, or expired: take it over
    RENEW = "renew"  # ours: write a new renewTime
    WAIT = "wait"  # held by another, not expired


@dataclasses.dataclass(frozen=True)
class Decision:
    move: Move
    #: when WAIT: when the holder's lease expires if it is not renewed (monotonic)
    until: float = 0.0


def decide(sighting: Sighting | None, identity: str, now: float) -> Decision:
    """What a candidate does with the Lease as last read (``None``: there is none)."""
    if sighting is None:
        return Decision(Move.CREATE)
    record = sighting.record
    if record.holder == identity:
        return Decision(Move.RENEW)
    if not record.holder or sighting.expires() <= now:
        return Decision(Move.ACQUIRE)
    return Decision(Move.WAIT, until=sighting.expires())


def next_record(
    move: Move, current: Record | None, settings: LeaderElection, wall: str | None = None
) -> Record:
    """The record a CREATE, ACQUIRE or RENEW writes: a new holder counts one more transition and
    starts a new ``acquireTime``; a renewal keeps both."""
    wall = wall or micro_time()
    if move is Move.RENEW and current is not None:
        return dataclasses.replace(
            current, holder=settings.identity, lease_duration=settings.lease_duration, renew_time=wall
        )
    transitions = 0 if current is None else current.transitions + 1
    return Record(settings.identity, settings.lease_duration, wall, wall, transitions)


def released(current: Record, wall: str | None = None) -> Record:
    """What a leader that stops cleanly writes: no holder and a 1 s duration, so standbys take it
    at their next try instead of waiting out the lease."""
    wall = wall or micro_time()
    return Record("", 1, wall, wall, current.transitions)


def standby_wait(decision: Decision, now: float, retry_period: float, jitter: float) -> float:
    """How long a standby sleeps before its next try: the retry period (stretched by ``jitter``, a
    fraction in [0, 1)), but no later than just past the holder's expiry, so a leader that died
    is replaced when its lease runs out rather than up to a retry period after."""
    wait = retry_period * (1 + JITTER * jitter)
    if decision.move is Move.WAIT:
        wait = min(wait, max(decision.until - now, 0.0) + 0.01)
    return wait
