"""The hub controllers as one kopf operator: wiring, kopf settings and the process's lifetime.

Called by ``fleetplane controllers run`` (``fleetplane/controllers_cli.py``) through ``run``, and by
anything that embeds the operator in its own event loop through ``serve``. Both controllers live in
one process on purpose: they share the ``StatusBook`` (the propagation controller's facts and the
Application statuses that make up each ApplicationSet's status) and the mirror notifications.

What kopf is told:
- log in with the given kubeconfig (not kopf's default discovery), cluster-wide;
- keep its bookkeeping in annotations with a ``fleetplane.io`` prefix and finalizer
  ``fleetplane.io/propagation``: Argo CD's ApplicationSet status schema would prune kopf's usual
  ``status.kopf`` field;
- standalone (no peering objects on the hub): with ``election``, replicas elect one leader on a
  Lease and only the leader runs kopf (``kubeio.kopf_operator.operate``); it starts as a fresh
  operator, whose resume handlers and first passes repair whatever changed meanwhile.

Ready (``/readyz`` on ``--health-port``) while kopf has started and watches ApplicationSets and the
inventory's Secrets, the hub's API server answered recently, the Maestro server answers over the
controllers' own channel and serves, and the background loops (the watch of the mirrors, status
aggregation, orphan sweep) run. A standby is ready too, and says it stands by.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

import kopf

from controllers import argocd_cache, contract, hub
from controllers.metrics import ControllerMetrics
from controllers.propagation import controller as propagation
from controllers.propagation import handlers as propagation_handlers
from controllers.propagation import plan
from controllers.propagation.mirror_cache import MirrorCache
from controllers.propagation.settings import PropagationSettings
from controllers.status import book
from controllers.status import controller as status
from kubeio import kopf_operator, leader, operator_readiness, probes
from maestro.client import Credentials, MaestroClient

log = logging.getLogger(__name__)

FINALIZER = "fleetplane.io/propagation"
#: what kopf must watch for the controllers to do their work
WATCHED = (
    operator_readiness.Kind(hub.ARGOCD_GROUP, hub.APPLICATION_SETS),
    operator_readiness.Kind("", "secrets"),
)


@dataclasses.dataclass(frozen=True)
class OperatorSettings:
    kubeconfig: str | None
    maestro: str
    #: the controllers' Maestro identity: a certificate of source ``fleetplane``, or a hub token
    #: allowed ``publish``, ``subscribe`` and ``list`` on ``sources/fleetplane``
    maestro_credentials: Credentials
    propagation: PropagationSettings = dataclasses.field(default_factory=PropagationSettings)
    status: status.StatusSettings = dataclasses.field(default_factory=status.StatusSettings)
    #: e.g. ``http://127.0.0.1:8080/healthz``: the liveness probe, answered by leader and standbys
    liveness: str | None = None
    #: the Lease replicas compete for (None: run at once, as the only replica)
    election: leader.Election | None = None
    #: where /healthz and /readyz answer plain HTTP (None: nowhere; 0: a free port), leader and
    #: standbys alike
    health_port: int | None = None
    health_host: str = probes.LOOPBACK
    #: where /metrics answers plain HTTP (None: nowhere; 0: a free port), leader and standbys alike
    metrics_port: int | None = None
    metrics_host: str = probes.LOOPBACK
    #: the hub Argo CD's Redis, where each mirror's resource tree is written (None: not written)
    trees: argocd_cache.TreeCacheSettings | None = None


@dataclasses.dataclass
class Operator:
    """Everything one running operator is made of (tests and the benchmark read its parts)."""

    registry: kopf.OperatorRegistry
    kopf_settings: kopf.OperatorSettings
    #: the propagation's connections to the hub
    hub_client: hub.HubClient
    #: the status writer's own connections to the hub (see ``build``)
    status_hub_client: hub.HubClient
    maestro: MaestroClient
    book: book.StatusBook
    propagation: propagation.PropagationController
    status: status.StatusController
    metrics: ControllerMetrics
    kopf_state: operator_readiness.KopfState
    readiness: probes.Readiness
    #: the loops kopf does not run: the mirrors' watch, status aggregation and the orphan sweep
    background: list[asyncio.Task[None]] = dataclasses.field(default_factory=list)

    def start_background(self) -> None:
        """Start the background loops (when kopf starts), watched by the readiness."""
        cache = self.propagation.mirror_cache
        self.background = [
            *([asyncio.create_task(cache.run(), name="mirror-watch")] if cache is not None else []),
            asyncio.create_task(self.status.run(), name="status-aggregation"),
            asyncio.create_task(self.propagation.sweep_forever(), name="orphan-sweep"),
        ]
        self.readiness.watch(self.background)

    async def stop(self) -> None:
        """Stop the background loops and close every connection (when kopf stops)."""
        self.readiness.stopping()
        for task in self.background:
            task.cancel()
        # a loop that failed was logged when it did (and made the operator unready): stop anyway
        await asyncio.gather(*self.background, return_exceptions=True)
        self.background.clear()
        await self.maestro.close()
        await self.hub_client.close()
        await self.status_hub_client.close()


def build(settings: OperatorSettings) -> Operator:
    """Wire both controllers into a kopf registry of their own (never kopf's global default)."""
    hub_client = hub.HubClient(settings.kubeconfig)
    # Status writes get connections of their own: sharing one pool, the propagation's thousands of
    # mirror applies queued ahead of them (a 3,000 x 50 run wrote ~12 statuses/s until the last
    # mirror existed, then ~600/s). A few connections above the writer's slots serve its lists.
    status_hub_client = hub.HubClient(
        settings.kubeconfig, max_connections=settings.status.write_concurrency + 4
    )
    maestro = MaestroClient(
        settings.maestro,
        source=contract.MAESTRO_SOURCE,
        credentials=settings.maestro_credentials,
        batch_publish=True,
    )
    status_book = book.StatusBook()
    metrics = ControllerMetrics()
    trees = (
        argocd_cache.TreeWriter(argocd_cache.connect(settings.trees), settings.trees.argocd_namespace)
        if settings.trees is not None
        else None
    )
    status_controller = status.StatusController(
        status_hub_client, maestro, status_book, settings.status, metrics=metrics, trees=trees
    )
    propagation_controller = propagation.PropagationController(
        hub_client,
        maestro,
        status_book,
        status_controller,
        settings.propagation,
        plan.PlanOptions(source=contract.MAESTRO_SOURCE),
        metrics=metrics,
        mirror_cache=MirrorCache(hub_client, metrics),
    )
    # a status change may let a RollingSync move on to its next step
    status_controller.on_app_status = propagation_controller.wake_if_rolling

    kopf_state = operator_readiness.KopfState()

    async def maestro_serves() -> str | None:
        return await maestro.not_serving(operator_readiness.PING_TIMEOUT)

    readiness = probes.Readiness(
        {
            "kopf": kopf_state.check(WATCHED),
            "the hub's API server": operator_readiness.api_server_check(
                hub_client.rest, "the hub's API server"
            ),
            "the Maestro server": maestro_serves,
        }
    )
    operator = Operator(
        kopf.OperatorRegistry(),
        kopf_operator.settings(finalizer=FINALIZER, prefix="fleetplane.io"),
        hub_client,
        status_hub_client,
        maestro,
        status_book,
        propagation_controller,
        status_controller,
        metrics,
        kopf_state,
        readiness,
    )
    registry = operator.registry
    propagation_handlers.register(registry, propagation_controller)

    @kopf.on.login(registry=registry)
    def authenticate(**_: Any) -> kopf.ConnectionInfo:
        return kopf_operator.connection(settings.kubeconfig)

    @kopf.on.startup(registry=registry)
    async def start_background(**_: Any) -> None:
        operator.start_background()

    @kopf.on.cleanup(registry=registry)
    async def stop_background(**_: Any) -> None:
        await operator.stop()

    return operator


async def serve(
    settings: OperatorSettings,
    *,
    stop_flag: asyncio.Event | None = None,
    ready_flag: asyncio.Event | None = None,
) -> None:
    """Run the operator in the current event loop until ``stop_flag`` is set or a signal arrives."""
    operator = build(settings)
    await kopf_operator.operate(
        operator.registry,
        operator.kopf_settings,
        state=operator.kopf_state,
        liveness=settings.liveness,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
        election=settings.election,
        metrics=kopf_operator.MetricsPort(
            operator.metrics.registry, settings.metrics_host, settings.metrics_port
        ),
        health=kopf_operator.HealthPort(operator.readiness, settings.health_host, settings.health_port),
    )


def run(settings: OperatorSettings) -> None:
    asyncio.run(serve(settings))
