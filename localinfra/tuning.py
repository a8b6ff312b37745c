"""What a local worker cluster's processes are told to hold less memory (docs/local-fleet.md).

A local worker is a kube-apiserver and a controller manager, Argo CD's application-controller,
repo-server and Redis, and a Maestro agent, all on this machine: untuned, about 670 MB of
proportional set size (1 GB resident, each binary's code counted per process). ``TUNED``
holds the settings measured to pay off without changing what the cluster serves; ``UNTUNED`` adds
nothing (the components' own defaults), for comparison and as an opt-out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


def _frozen(values: Mapping[str, str] | None = None) -> Mapping[str, str]:
    return MappingProxyType(dict(values or {}))


@dataclass(frozen=True)
class WorkerTuning:
    """Environment added to each process of a local worker cluster, and Argo CD's flags."""

    name: str
    apiserver_env: Mapping[str, str] = field(default_factory=_frozen)
    controller_manager_env: Mapping[str, str] = field(default_factory=_frozen)
    #: Argo CD's application-controller: replaces its default processor counts
    argocd_controller_args: tuple[str, ...] = ()
    argocd_repo_server_args: tuple[str, ...] = ()
    #: every Argo CD component's (Go runtime, ``ARGOCD_*``)
    argocd_env: Mapping[str, str] = field(default_factory=_frozen)
    #: the Maestro agent's (a Python process)
    agent_env: Mapping[str, str] = field(default_factory=_frozen)


UNTUNED = WorkerTuning("untuned")

#: Go's collector runs when the heap grows by half, not when it doubles, so a process's resident
#: memory stays nearer its live heap. No GOMEMLIMIT: a 300 MiB soft limit on the API server kept
#: its collector running while it built the OpenAPI of Argo CD's ApplicationSet CRD, and six
#: clusters started at once had not established that CRD five minutes later on a loaded machine.
_GO = _frozen({"GOGC": "50"})

TUNED = WorkerTuning(
    "tuned",
    apiserver_env=_GO,
    controller_manager_env=_GO,
    # A worker's Argo CD serves a few Applications: two status processors and one operation
    # processor keep up (4 and 2 untuned; Argo CD's own defaults, 20 and 10, are sized for
    # thousands); one manifest generation at a time in the repo-server.
    argocd_controller_args=("--status-processors", "2", "--operation-processors", "1"),
    argocd_repo_server_args=("--parallelismlimit", "1"),
    argocd_env=_GO,
    # glibc gives each thread that allocates an arena of its own (up to 8 per core); the agent's
    # gRPC, Kafka and asyncio threads allocate little, and two arenas serve them.
    agent_env=_frozen({"MALLOC_ARENA_MAX": "2"}),
)

TUNINGS = {t.name: t for t in (TUNED, UNTUNED)}


def by_name(name: str) -> WorkerTuning:
    """``tuned`` or ``untuned``; a clear error naming the choices otherwise."""
    try:
        return TUNINGS[name]
    except KeyError:
        raise ValueError(f"unknown worker tuning {name!r}: choose one of {', '.join(TUNINGS)}") from None
