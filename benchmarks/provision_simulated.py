"""``fleetplane bench provision --simulated --claims N``: the provisioner at fleet scale.

As Cluster API's in-memory provider does for Cluster API: the real provisioner (``fleetplane
provisioner run --simulated``), real claims, composites, compositions and revisions on a real
management kube-apiserver, real Maestro consumers and certificates in a real Maestro on PostgreSQL,
the real hub inventory; only the clusters are simulated (``provisioner.providers.simulated``: no
kube-apiserver per cluster, what is applied to one is kept in the provisioner's memory).

Measures, in turn: N claims applied at once until all are Ready; a change of the Composition (a
new inventory label in its defaults) until every composite, under the Automatic update policy, is
on the new revision and its inventory entry carries the label; deleting every claim until no claim,
composite, consumer or inventory entry is left.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

from benchmarks import provision
from benchmarks.proc_sample import rss_mb
from benchmarks.progress import Progress
from kubeio import objects
from localinfra import kubectl, process
from maestro.client import MaestroClient

#: what a simulated cluster's Argo CD would sync (nothing fetches it)
APPS_REPO = "https://git.example.com/bench/apps.git"
ROLLOUT_LABEL = ("tier", "gold")
COMPOSITES = "/apis/platform.fleetplane.io/v1alpha1/workerclusters"
#: claims applied at once (each a server-side apply of its own)
APPLY_CONCURRENCY = 32


@dataclasses.dataclass
class SimulatedResult:
    claims: int
    insecure: bool = False
    seconds_to_all_ready: float | None = None
    first_ready_seconds: float | None = None
    seconds_to_roll_out: float | None = None
    seconds_to_all_deleted: float | None = None
    provisioner_rss_mb: float | None = None
    provisioner_cpu_seconds: float | None = None
    notes: list[str] = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


async def run(
    claims: int,
    *,
    progress: Progress,
    timeout: float = 1800.0,
    insecure: bool = False,
    resync: float = 300.0,
) -> SimulatedResult:
    result = SimulatedResult(claims, insecure=insecure)
    # A long resync: the figures are those of the passes that claims and changes cause. One
    # replica, no election: what is measured is passes, and on a loaded machine a Lease renewal
    # queued behind a thousand claims' writes can miss the 10 s renew deadline (the replica then
    # exits, as it must).
    args = ["--simulated", "--resync", str(resync), "--no-leader-elect", "--log-level", "warning"]
    async with provision.hub_platform(progress, insecure=insecure, provisioner_args=args) as bench:
        hub = objects.Objects(bench.rest)
        progress(f"[bench] applying {claims} ClusterClaims (simulated clusters) ...")
        started = time.monotonic()
        await _apply_all(hub, [provision.claim(i, APPS_REPO, "simulated") for i in range(claims)])
        waited = await provision.wait_ready(bench, claims, progress, started, timeout)
        result.seconds_to_all_ready, result.first_ready_seconds = waited.seconds, waited.first
        if waited.problem:
            result.notes.append(waited.problem)
            return result
        progress("[bench] changing the Composition: every composite rolls out its new revision ...")
        rolled = await roll_out(bench, claims, progress, timeout)
        result.seconds_to_roll_out = rolled.seconds
        if rolled.problem:
            result.notes.append(rolled.problem)
        result.provisioner_rss_mb = round(rss_mb(bench.provisioner.pid), 1)
        progress(f"[bench] deleting the {claims} claims ...")
        deleted = await provision.delete_all(bench, claims, progress, timeout)
        result.seconds_to_all_deleted = deleted.seconds
        if deleted.problem:
            result.notes.append(deleted.problem)
        else:
            result.notes.extend(await leftovers(bench))
        result.provisioner_cpu_seconds = process_cpu_seconds(bench.provisioner.pid)
    return result


async def _apply_all(hub: objects.Objects, wanted: list[dict[str, Any]]) -> None:
    gate = asyncio.Semaphore(APPLY_CONCURRENCY)

    async def apply(obj: dict[str, Any]) -> None:
        async with gate:
            await hub.apply(obj, field_manager="bench")

    await asyncio.gather(*(apply(obj) for obj in wanted))


async def roll_out(bench: provision.Hub, claims: int, progress: Progress, timeout: float) -> provision.Waited:
    """Add a label to the Composition's defaults; until every inventory entry carries it and every
    composite is on the new revision and Ready."""
    key, value = ROLLOUT_LABEL
    patch = json.dumps({"spec": {"defaults": {"labels": {key: value}}}})
    progress.step("composites rolled out", claims)
    started = time.monotonic()
    await asyncio.to_thread(
        kubectl.run,
        bench.hub.kubeconfig,
        "patch",
        "composition",
        "worker-cluster",
        "--type",
        "merge",
        "-p",
        patch,
    )
    last = -1
    while True:
        labelled = await _count(bench, "/api/v1/secrets", f"{key}={value}")
        on_latest = await _on_latest_revision(bench) if labelled == claims else 0
        done = on_latest if labelled == claims else labelled
        progress.advance(done)
        elapsed = time.monotonic() - started
        if done != last:
            progress(f"[bench] {elapsed:6.1f}s  {labelled}/{claims} inventory entries relabelled")
            last = done
        if on_latest == claims:
            return provision.Waited(seconds=round(elapsed, 1))
        if not process.is_alive(bench.provisioner):
            return provision.Waited(
                problem=f"the provisioner died: {process.log_tail(bench.provisioner.log, 10)}"
            )
        if elapsed > timeout:
            return provision.Waited(problem=f"{labelled}/{claims} relabelled after {timeout:.0f}s")
        await asyncio.sleep(provision.POLL_SECONDS)


async def _count(bench: provision.Hub, path: str, selector: str) -> int:
    reply = await bench.rest.request("GET", path, query=[("labelSelector", selector)])
    return len(reply.get("items") or [])


async def _on_latest_revision(bench: provision.Hub) -> int:
    revisions = await bench.rest.request("GET", "/apis/fleetplane.io/v1alpha1/compositionrevisions")
    items = revisions.get("items") or []
    latest = max(items, key=lambda r: int(r["spec"]["revision"]))["metadata"]["name"] if items else ""
    rows = await provision.table(bench.rest, COMPOSITES)
    return sum(row.get("READY") == "True" and row.get("COMPOSITION-REVISION") == latest for row in rows)


async def leftovers(bench: provision.Hub) -> list[str]:
    """What the deletion left: composites, inventory entries, Maestro consumers (none, or a note)."""
    notes = []
    composites = await _count(bench, COMPOSITES, "")
    inventory = await _count(bench, "/api/v1/secrets", "argocd.argoproj.io/secret-type=cluster")
    async with MaestroClient(
        bench.maestro, source="bench", credentials=bench.security.credentials()
    ) as client:
        consumers = len(await client.list_consumers())
    for what, left in (
        ("composites", composites),
        ("inventory entries", inventory),
        ("consumers", consumers),
    ):
        if left:
            notes.append(f"{left} {what} left after the claims went")
    return notes


def process_cpu_seconds(pid: int) -> float | None:
    """User and system CPU seconds the process has used (None once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    return round(ticks / os.sysconf("SC_CLK_TCK"), 1)
