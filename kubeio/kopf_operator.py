"""What our kopf operators (the hub controllers, the provisioner) share: login, settings, running
(with leader election among replicas, and probes and metrics that standbys answer too).

kopf's own ``login_via_client`` reads only the default kubeconfig; our operators are told which
cluster to serve (the hub, a management cluster) by a path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

import kopf

# kopf.operator takes an ``insights`` argument but exports its type only from here.
from kopf._cogs.structs.references import Insights
from prometheus_client import CollectorRegistry, Gauge

from kubeio import credentials, leader, probes
from kubeio import liveness as liveness_server
from kubeio.errors import ClusterUnavailableError
from kubeio.objects import CRD_PATH
from kubeio.operator_readiness import KopfState
from kubeio.rest import MERGE_PATCH, KubeRest

log = logging.getLogger(__name__)


def connection(kubeconfig: str | None) -> kopf.ConnectionInfo:
    endpoint = credentials.load_endpoint(kubeconfig)
    parts = endpoint.authorization.split(" ", 1)
    scheme, token = (parts[0], parts[1]) if len(parts) == 2 else (None, None)
    return kopf.ConnectionInfo(
        server=endpoint.server,
        ca_data=endpoint.ca,
        insecure=endpoint.insecure,
        scheme=scheme,
        token=token,
        certificate_data=endpoint.certificate,
        private_key_data=endpoint.key,
    )


def settings(*, finalizer: str, prefix: str) -> kopf.OperatorSettings:
    """kopf keeps its bookkeeping in annotations under ``prefix`` (some CRDs' status schemas would
    prune kopf's usual ``status.kopf``), runs standalone (no peering objects: replicas elect one
    leader on a Lease instead, see ``operate``), and posts only warnings as events (its INFO lines
    would become an event each)."""
    out = kopf.OperatorSettings()
    out.persistence.finalizer = finalizer
    out.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=prefix)
    out.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=prefix, key="last-handled-configuration"
    )
    out.peering.standalone = True
    out.posting.level = logging.WARNING
    return out


@dataclass(frozen=True)
class MetricsPort:
    """An operator's Prometheus metrics and where they answer (``port`` None: nowhere)."""

    registry: CollectorRegistry
    host: str = probes.LOOPBACK
    port: int | None = None


@dataclass(frozen=True)
class HealthPort:
    """An operator's readiness and where ``/healthz`` and ``/readyz`` answer (``port`` None: nowhere)."""

    readiness: probes.Readiness
    host: str = probes.LOOPBACK
    port: int | None = None


async def operate(
    registry: kopf.OperatorRegistry,
    operator_settings: kopf.OperatorSettings,
    *,
    state: KopfState | None = None,
    liveness: str | None = None,
    stop_flag: asyncio.Event | None = None,
    ready_flag: asyncio.Event | None = None,
    election: leader.Election | None = None,
    metrics: MetricsPort | None = None,
    health: HealthPort | None = None,
) -> None:
    """Run the operator cluster-wide in the current event loop until ``stop_flag`` or a signal,
    serving ``health`` and ``metrics`` meanwhile (with ``fleetplane_leader``: 1 while this replica
    leads). ``state`` learns what kopf does (its insights, its start); ``ready_flag`` is set with it.

    With ``election``, kopf runs only while this replica leads (``kubeio.leader``): a standby runs no
    handler, and a leader that loses its Lease ends the process at once. The health port, the
    liveness endpoint and the metrics are answered by leader and standbys alike, from the start; a
    standby's ``/readyz`` answers 200 and says it stands by (it serves no traffic, and a rolling
    update waits for its new pods to be ready). kopf serves none of them."""
    kopf_state = state or KopfState()

    async def run_kopf(stop: asyncio.Event | None) -> None:
        relay = None
        if ready_flag is not None:
            relay = asyncio.create_task(_follow(kopf_state.started, ready_flag), name="kopf-started")
        try:
            await kopf.operator(
                registry=registry,
                settings=operator_settings,
                clusterwide=True,
                stop_flag=stop,
                ready_flag=kopf_state.started,
                insights=kopf_state.insights,
            )
        finally:
            if relay is not None:
                relay.cancel()

    served = metrics or MetricsPort(CollectorRegistry())
    checked = health or HealthPort(probes.Readiness())
    if election is None:
        async with _serving(liveness, served, checked, lambda: True):
            await run_kopf(stop_flag)
        return
    rest = KubeRest(
        await asyncio.to_thread(credentials.load, election.kubeconfig), leader.retry_settings(election.lease)
    )
    elector = leader.LeaderElector(rest, election.lease)
    try:
        async with _serving(liveness, served, checked, lambda: elector.leading):
            await _campaign(elector, run_kopf, stop_flag)
    finally:
        await rest.close()


async def _follow(started: asyncio.Event, ready_flag: asyncio.Event) -> None:
    await started.wait()
    ready_flag.set()


#: a standby's ``/readyz`` body (with 200): ready to take over, doing nothing meanwhile
STANDBY = "standby: another replica leads; this one takes over when its lease runs out"


@contextlib.asynccontextmanager
async def _serving(
    liveness: str | None, metrics: MetricsPort, health: HealthPort, leading: Callable[[], bool]
) -> AsyncIterator[None]:
    """The health port (``/readyz`` of a standby: ``STANDBY``), the liveness endpoint
    (``{"leader": ...}``) and the metrics port, with a ``fleetplane_leader`` gauge in the operator's
    registry, for the life of the block."""
    gauge = Gauge(
        "fleetplane_leader",
        "1 while this replica leads (runs the handlers), 0 while it stands by",
        registry=None,
    )
    gauge.set_function(lambda: 1.0 if leading() else 0.0)
    metrics.registry.register(gauge)
    health_routes = probes.health_routes(health.readiness, standing_by=lambda: None if leading() else STANDBY)
    try:
        async with (
            probes.serving(health_routes, health.host, health.port),
            probes.serving(probes.metrics_routes(metrics.registry), metrics.host, metrics.port),
            liveness_server.serving(liveness, lambda: {"leader": leading()}),
        ):
            yield
    finally:
        metrics.registry.unregister(gauge)


async def _campaign(
    elector: leader.LeaderElector,
    run_kopf: Callable[[asyncio.Event | None], Coroutine[Any, Any, None]],
    stop_flag: asyncio.Event | None,
) -> None:
    """Stand by until elected, then run kopf until stopped. A stop (``stop_flag``, SIGTERM, SIGINT)
    ends a standby at once; a leader's kopf sees it and stops its handlers, then the Lease is
    released."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM) if threading.current_thread() is threading.main_thread() else ()
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)

    async def lead() -> None:
        # kopf installs its own signal handlers; handed a flag it does not need, it would keep a
        # task waiting on it through its shutdown, and so hold up the handover
        for sig in signals:
            loop.remove_signal_handler(sig)
        if not stop.is_set():
            await run_kopf(stop_flag)

    campaign = asyncio.create_task(elector.run(lead, on_lost=leader.exit_now), name="leader election")
    watchers: list[asyncio.Task[Any]] = [asyncio.create_task(stop.wait(), name="stop")]
    if stop_flag is not None:
        watchers.append(asyncio.create_task(_forward(stop_flag, stop), name="stop flag"))
    try:
        await asyncio.wait({campaign, watchers[0]}, return_when=asyncio.FIRST_COMPLETED)
        if not campaign.done() and not elector.leading:
            campaign.cancel()
        await asyncio.wait({campaign})
        if not campaign.cancelled():
            campaign.result()
    finally:
        for task in (campaign, *watchers):
            task.cancel()
        await asyncio.gather(campaign, *watchers, return_exceptions=True)
        for sig in signals:
            loop.remove_signal_handler(sig)


async def _forward(source: asyncio.Event, target: asyncio.Event) -> None:
    await source.wait()
    target.set()


class LateKinds:
    """Makes sure kopf watches kinds whose CRDs the operator itself creates while it runs.

    kopf learns of a new kind by re-reading discovery on each CRD watch event. The API server adds a
    CRD to discovery a moment after it is ``Established``, so the rescan of the CRD's last event can
    miss it; no later event rescans, and the kind's handlers never run (seen on a cold machine: a
    claim kind's objects went unanswered for minutes). ``ensure_watched`` waits until kopf's own
    view includes the kind, touching an annotation on the CRD (a new event, a new rescan) meanwhile.
    """

    NUDGE_ANNOTATION = "fleetplane.io/rescan"

    def __init__(self, rest: KubeRest, *, nudge_every: float = 2.0, timeout: float = 60.0) -> None:
        self.rest = rest
        self.insights = Insights()
        self.nudge_every = nudge_every
        self.timeout = timeout

    def watched(self, crd_name: str) -> bool:
        plural, _, group = crd_name.partition(".")
        return any(r.plural == plural and r.group == group for r in self.insights.watched_resources)

    async def ensure_watched(self, crd_names: Iterable[str]) -> None:
        for name in crd_names:
            await self._ensure(name)

    async def _ensure(self, crd_name: str) -> None:
        deadline = time.monotonic() + self.timeout
        nudges = 0
        while not self.watched(crd_name):
            if time.monotonic() > deadline:
                raise ClusterUnavailableError(
                    f"kopf did not start watching {crd_name} within {self.timeout:.0f}s of it being "
                    "served; check the API server's discovery (kubectl api-resources)"
                )
            if nudges:
                await self._nudge(crd_name)
            nudges += 1
            async with self.insights.revised:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.nudge_every):
                        await self.insights.revised.wait_for(lambda: self.watched(crd_name))
        if nudges > 1:
            log.info("kopf watches %s after %d rescan nudges", crd_name, nudges - 1)

    async def _nudge(self, crd_name: str) -> None:
        patch = {"metadata": {"annotations": {self.NUDGE_ANNOTATION: str(time.time_ns())}}}
        await self.rest.request("PATCH", f"{CRD_PATH}/{crd_name}", body=patch, content_type=MERGE_PATCH)
