"""The propagation controller's kopf wiring: which events reach ``PropagationController``.

``controllers.operator`` calls ``register`` with its own registry:

- a **daemon per opted-in ApplicationSet** runs ``run_daemon``: a pass at start, whenever it is
  woken, and every ``resync_seconds``;
- **watch events** wake the daemons: an ApplicationSet's own spec or labels changing, any cluster
  Secret of the inventory changing (every daemon), a cluster decision resource changing (the
  daemons of its namespace);
- a **deletion handler** holds kopf's finalizer until every work of the ApplicationSet is gone from
  Maestro (deleted on its cluster), then the hub mirrors are deleted (``finalize``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import kopf

from controllers import contract, hub
from controllers.propagation import inventory
from controllers.propagation.controller import PropagationController
from controllers.propagation.outcome import is_transient


def register(registry: kopf.OperatorRegistry, controller: PropagationController) -> None:
    """Add the propagation handlers to ``registry`` (the operator's, not kopf's global default)."""
    group, version = hub.ARGOCD_GROUP, hub.ARGOCD_VERSION
    pull = {contract.PULL_LABEL: contract.PULL_LABEL_VALUE}
    inventory_namespace = controller.settings.inventory_namespace

    # Explicit ids: kopf keys its progress annotations by handler id, and the default ids of
    # nested functions ("register.<locals>.x") are not valid annotation names.
    @kopf.on.event(group, version, hub.APPLICATION_SETS, registry=registry, id="applicationset-changed")
    async def applicationset_changed(type: str | None, body: kopf.Body, **_: Any) -> None:
        controller.appset_seen(type, body)

    # cancellation_timeout: kopf cancels an async daemon only when one is set; without it a
    # deleted ApplicationSet's daemon would be left running.
    @kopf.daemon(
        group,
        version,
        hub.APPLICATION_SETS,
        labels=pull,
        registry=registry,
        id="propagate",
        cancellation_timeout=5.0,
    )
    async def propagate(
        namespace: str | None, name: str, body: kopf.Body, stopped: kopf.DaemonStopped, **_: Any
    ) -> None:
        def report(kind: str, reason: str, message: str) -> None:
            kopf.event(body, type=kind, reason=reason, message=message)

        # Exit on kopf's stop flag rather than wait to be cancelled (kopf warns about those).
        stop = asyncio.Event()

        async def relay_stop() -> None:
            await stopped.wait()
            stop.set()
            controller.wake(str(namespace), name)

        relay = asyncio.create_task(relay_stop())
        try:
            await controller.run_daemon(str(namespace), name, report, stop)
        finally:
            relay.cancel()

    @kopf.on.delete(group, version, hub.APPLICATION_SETS, labels=pull, registry=registry, id="unpropagate")
    async def unpropagate(namespace: str | None, name: str, spec: kopf.Spec, **_: Any) -> None:
        try:
            remaining = await controller.finalize(str(namespace), name, dict(spec))
        except Exception as exc:
            if is_transient(exc):  # kopf's default for other errors is a minute's backoff
                raise kopf.TemporaryError(f"Maestro or the hub unavailable: {exc}", delay=5) from exc
            raise
        if remaining:
            raise kopf.TemporaryError(
                f"waiting for {remaining} work(s) to be deleted from their clusters", delay=3
            )

    def in_inventory(namespace: str | None, **_: Any) -> bool:
        return namespace == inventory_namespace

    @kopf.on.event(
        "",
        "v1",
        "secrets",
        labels={inventory.SECRET_TYPE_LABEL: inventory.SECRET_TYPE_CLUSTER},
        when=in_inventory,
        registry=registry,
        id="inventory-changed",
    )
    async def inventory_changed(**_: Any) -> None:
        controller.inventory_changed()

    for resource in controller.settings.decision_resources:
        plural, _, rest = resource.partition(".")
        decision_version, _, decision_group = rest.partition(".")

        @kopf.on.event(
            decision_group, decision_version, plural, registry=registry, id=f"decisions-{resource}"
        )
        async def decisions_changed(namespace: str | None, **_: Any) -> None:
            controller.wake_all(str(namespace))
