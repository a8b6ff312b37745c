"""What our kopf operators (the hub controllers, the provisioner) share: login, settings, running.

kopf's own ``login_via_client`` reads only the default kubeconfig; our operators are told which
cluster to serve (the hub, a management cluster) by a path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

import kopf

# kopf.operator takes an ``insights`` argument but exports its type only from here.
from kopf._cogs.structs.references import Insights
from kubernetes import client, config
from prometheus_client import CollectorRegistry

from kubeio import credentials, probes
from kubeio.errors import ClusterUnavailableError
from kubeio.objects import CRD_PATH
from kubeio.operator_readiness import KopfState
from kubeio.rest import MERGE_PATCH, KubeRest

log = logging.getLogger(__name__)


def connection(kubeconfig: str | None) -> kopf.ConnectionInfo:
    configuration = client.Configuration()
    if kubeconfig:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    else:
        config.load_incluster_config(client_configuration=configuration)
    parts = credentials.authorization_header(configuration).split(" ", 1)
    scheme, token = (parts[0], parts[1]) if len(parts) == 2 else (None, parts[0] or None)
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        scheme=scheme,
        token=token,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
    )


def settings(*, finalizer: str, prefix: str) -> kopf.OperatorSettings:
    """kopf keeps its bookkeeping in annotations under ``prefix`` (some CRDs' status schemas would
    prune kopf's usual ``status.kopf``), runs standalone (one replica, no peering objects), and
    posts only warnings as events (its INFO lines would become an event each)."""
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
    metrics: MetricsPort | None = None,
    health: HealthPort | None = None,
) -> None:
    """Run the operator cluster-wide in the current event loop until ``stop_flag`` or a signal,
    serving ``health`` and ``metrics`` meanwhile (kopf itself serves only a liveness endpoint).
    ``state`` learns what kopf does (its insights, its start); ``ready_flag`` is set with it."""
    kopf_state = state or KopfState()
    served = metrics or MetricsPort(CollectorRegistry())
    checked = health or HealthPort(probes.Readiness())
    async with (
        probes.serving(probes.health_routes(checked.readiness), checked.host, checked.port),
        probes.serving(probes.metrics_routes(served.registry), served.host, served.port),
    ):
        relay = None
        if ready_flag is not None:
            relay = asyncio.create_task(_follow(kopf_state.started, ready_flag), name="kopf-started")
        try:
            await kopf.operator(
                registry=registry,
                settings=operator_settings,
                clusterwide=True,
                liveness_endpoint=liveness,
                stop_flag=stop_flag,
                ready_flag=kopf_state.started,
                insights=kopf_state.insights,
            )
        finally:
            if relay is not None:
                relay.cancel()


async def _follow(started: asyncio.Event, ready_flag: asyncio.Event) -> None:
    await started.wait()
    ready_flag.set()


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
