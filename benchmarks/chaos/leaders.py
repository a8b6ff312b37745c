"""Two replicas of a leader-elected operator (``controllers run``, ``provisioner run``), as the chaos
suite and ``bench chaos`` start them, and what a user reads of them and of the hub.

Both replicas run one command line and compete for one Lease (default timings: a 15 s lease); each
says who it is in its log once it competes, and the Lease's holder says which one leads. The reads
(the Lease, the hub's ApplicationSets and Applications, the claims, Maestro's works and consumers,
the outbox) are the same for the suite, on real worker clusters, and the benchmark, on simulated
ones; what each cluster holds is read where the clusters are.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import psycopg

from benchmarks.chaos import appsets, claims
from controllers import contract
from controllers.propagation import ownership
from kubeio.errors import NotFoundError
from kubeio.rest import KubeRest
from localinfra import platform
from maestro.api import queries
from maestro.client import Credentials, MaestroClient
from trust import files

T = TypeVar("T")

#: where the replicas' Leases are (the operators' default namespace)
LEASES = "/apis/coordination.k8s.io/v1/namespaces/default/leases"
_TRYING = re.compile(r"trying to lead as ([\w.-]+)")


def run_id() -> str:
    """A run's id, for its names and label values: hex after a letter, so that no YAML reader
    (kubectl's) takes it for a number, as it would ``1e5432``."""
    return f"r{uuid.uuid4().hex[:5]}"


def identity_in(log: Path) -> str | None:
    """Who a replica is in the Lease, once its log says it competes for it."""
    found = _TRYING.search(log.read_text(errors="replace") if log.exists() else "")
    return found.group(1) if found else None


def leader_and_standby(holder: str, identities: Mapping[T, str | None]) -> tuple[T, T] | None:
    """The replica holding the Lease and the other one (None while neither of the two holds it)."""
    leading = [r for r, who in identities.items() if who is not None and who == holder]
    if len(leading) != 1 or len(identities) != 2:
        return None
    (standby,) = [r for r in identities if r is not leading[0]]
    return leading[0], standby


def controllers_argv(kubeconfig: Path, maestro: str, tls: files.TLSFiles, lease: str) -> list[str]:
    """``fleetplane controllers run`` as a replica competing for the Lease ``lease``."""
    return platform.fleetplane_argv(
        *platform.controllers_args(kubeconfig, maestro, tls, "--leader-elect-resource-name", lease)
    )


def provisioner_argv(
    kubeconfig: Path, maestro: str, kafka: str, topic_prefix: str, tls_dir: Path, ca_dir: Path, lease: str
) -> list[str]:
    """``fleetplane provisioner run`` with the simulated provider, as a replica competing for the
    Lease ``lease``; ``ca_dir``'s CA (which Maestro trusts) issues each cluster's certificates."""
    return platform.fleetplane_argv(
        "provisioner",
        "run",
        "--kubeconfig",
        str(kubeconfig),
        "--maestro",
        maestro,
        "--kafka",
        kafka,
        "--topic-prefix",
        topic_prefix,
        "--simulated",
        "--tls-dir",
        str(tls_dir),
        "--ca-dir",
        str(ca_dir),
        "--leader-elect-resource-name",
        lease,
        # The default 15 s lease, with the renew deadline just short of it: on a machine this loaded
        # a renewal can queue behind the claims' writes for more than the default 10 s.
        "--leader-elect-renew-deadline",
        "14",
        "--resync",
        "10",
        "--log-level",
        "info",
    )


async def until(
    what: str,
    check: Callable[[], Awaitable[tuple[bool, T]]],
    *,
    timeout: float,
    period: float = 0.5,
) -> T:
    """Wait until ``check`` says done and return what it saw; at ``timeout`` an AssertionError
    says what was expected and what was last seen."""
    deadline = time.monotonic() + timeout
    while True:
        done, seen = await check()
        if done:
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s; last seen {seen}")
        await asyncio.sleep(period)


class HubReads:
    """What a user of the operators reads on the hub and in Maestro."""

    def __init__(
        self, rest: KubeRest, maestro: Callable[[], str], credentials: Credentials, dsn: str
    ) -> None:
        #: ``maestro()`` is a live Maestro replica's address at the time of the read
        self.rest, self.maestro, self.credentials, self.dsn = rest, maestro, credentials, dsn

    async def holder(self, lease: str) -> str:
        with contextlib.suppress(NotFoundError):
            return str(
                (await self.rest.request("GET", f"{LEASES}/{lease}"))["spec"].get("holderIdentity") or ""
            )
        return ""

    async def works(self, prefix: str, seen: set[str]) -> Counter[tuple[str, str]]:
        """How many works Maestro holds per (ApplicationSet, cluster) of the ApplicationSets named
        ``prefix``...; every work id listed is added to ``seen`` (a deleted one's status reports
        stay in the topics)."""
        async with MaestroClient(
            self.maestro(), source="chaos-observer", credentials=self.credentials
        ) as reader:
            async with asyncio.timeout(60):
                listed, _ = await reader.list_summaries(
                    queries.ResourceFilter(source=contract.MAESTRO_SOURCE), with_spec=False, with_status=False
                )
        counted: Counter[tuple[str, str]] = Counter()
        for work in listed:
            owner = ownership.owner(work.metadata())
            if owner is not None and owner[1].startswith(prefix):
                counted[(owner[1], work.consumer)] += 1
                seen.add(work.id)
        return counted

    async def appset_names(self) -> set[str]:
        listed = await self.rest.request("GET", appsets.APPSETS)
        return {a["metadata"]["name"] for a in listed.get("items") or []}

    async def applications(
        self, run: str, rest: KubeRest | None = None
    ) -> dict[str, list[Mapping[str, Any]]]:
        """The run's Applications on the hub (or on the cluster of ``rest``), by name."""
        listed = await (rest or self.rest).request(
            "GET", appsets.APPLICATIONS, query=[("labelSelector", f"{appsets.RUN_LABEL}={run}")]
        )
        return appsets.by_name(listed.get("items") or [])

    async def outbox(self) -> int:
        async with await psycopg.AsyncConnection.connect(self.dsn, connect_timeout=10) as conn:
            row = await (await conn.execute("SELECT count(*) FROM outbox")).fetchone()
        return int(row[0]) if row else 0

    async def consumers(self, run: str) -> list[str]:
        async with MaestroClient(
            self.maestro(), source="chaos-observer", credentials=self.credentials
        ) as reader:
            return sorted(c.name for c in await reader.list_consumers({claims.RUN_LABEL: run}))

    async def inventory(self, run: str) -> list[str]:
        reply = await self.rest.request(
            "GET", claims.INVENTORY, query=[("labelSelector", f"{claims.RUN_LABEL}={run}")]
        )
        return sorted(s["metadata"]["name"] for s in reply.get("items") or [])

    async def claims(self, path: str, run: str) -> claims.Snapshot:
        """The claims at ``path`` and the run's consumers and inventory entries."""
        items = list((await self.rest.request("GET", path)).get("items") or [])
        present = sorted(c["metadata"]["name"] for c in items)
        return claims.Snapshot(
            claims.ready(items), present, await self.consumers(run), await self.inventory(run)
        )
