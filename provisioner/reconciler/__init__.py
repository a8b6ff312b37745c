"""Claims, composites, compositions and definitions on the management cluster, reconciled.

Called by ``provisioner.operator`` (the kopf wiring) for every event and periodic pass; each call
is level-based: it reads what exists and moves it one step closer to what the composite asks, so a
restart, a missed event or a manual edit is repaired by the next call. A call that has to wait (a
cluster starting, a workload not ready, works still draining from Maestro) raises ``Requeue``.

The reconciler knows clusters through the provider contract only (``providers.base``): what a
provider runs for a cluster beside it (the local provider's processes) stays the provider's.

| module | what it holds |
| --- | --- |
| ``definitions`` | definitions served as CRDs; Composition revisions cut and pruned |
| ``claims`` | claims bound to their composite, its status copied back; refused claims |
| ``composites`` | a composite's pass: render, provider, composed resources, prune |
| ``composing`` | a revision's pipeline run for a composite; its conditions and events |
| ``registration`` | the cluster's Maestro consumer and the works Maestro holds for it |
| ``identities`` | the agent's certificate: issued, renewed, revoked |
| ``deletion`` | the ordered deletion of a composite |
| ``status`` | conditions and status written to composites, claims and definitions |
| ``clusters`` | the clients of the provisioned clusters |
| ``context`` | what every step shares: settings, clients, locks |
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from kubeio import objects
from kubeio.rest import KubeRest
from maestro.client import MaestroClient
from provisioner.providers.base import ClusterProvider
from provisioner.reconciler import claims, composites, definitions, deletion
from provisioner.reconciler.context import (
    FIELD_MANAGER,
    Context,
    JsonObject,
    Reporter,
    Requeue,
    Settings,
    kind_path,
)

__all__ = ["FIELD_MANAGER", "Reconciler", "Requeue", "Settings", "kind_path"]


class Reconciler:
    def __init__(
        self,
        hub: KubeRest,
        maestro: MaestroClient,
        providers: Mapping[str, ClusterProvider],
        settings: Settings,
        *,
        report: Reporter | None = None,
        kinds_served: Callable[[Sequence[str]], Awaitable[None]] | None = None,
    ) -> None:
        self.ctx = Context(
            hub=objects.Objects(hub),
            maestro=maestro,
            providers=providers,
            settings=settings,
            report=report or (lambda *_: None),
            kinds_served=kinds_served,
        )

    @property
    def hub(self) -> objects.Objects:
        return self.ctx.hub

    async def close(self) -> None:
        await self.ctx.clusters.close()

    async def list_objects(
        self, group: str, version: str, plural: str, *, label_selector: str = ""
    ) -> list[JsonObject]:
        return await self.ctx.list_objects(group, version, plural, label_selector=label_selector)

    async def recent_objects(self, group: str, version: str, plural: str) -> list[JsonObject]:
        return await self.ctx.recent_objects(group, version, plural)

    def bound_by_its_pass(self, composite: str, generation: int) -> bool:
        """Whether the composite's spec is at the generation its own pass gave it when binding its
        Composition and revision (a change that needs no further pass)."""
        return self.ctx.bound_generations.get(composite) == generation

    async def reconcile_definition(self, definition: Mapping[str, Any]) -> list[str]:
        return await definitions.reconcile_definition(self.ctx, definition)

    async def reconcile_composition(self, composition: Mapping[str, Any]) -> str:
        return await definitions.reconcile_composition(self.ctx, composition)

    # Claims take their turn with the composites' passes: a thousand claims applied at once would
    # otherwise send the management cluster's API server thousands of writes at once.
    async def reconcile_claim(self, claim: Mapping[str, Any], definition: Mapping[str, Any]) -> None:
        async with self.ctx.turn(_claim_key(claim), "claim"):
            await claims.reconcile_claim(self.ctx, claim, definition)

    async def composite_changed(self, composite: Mapping[str, Any]) -> None:
        ref = (composite.get("spec") or {}).get("claimRef") or {}
        if not ref.get("name"):
            return  # a composite made without a claim: no claim shows its status
        async with self.ctx.turn(f"claim/{ref.get('namespace')}/{ref.get('name')}", "claim"):
            await claims.composite_changed(self.ctx, composite)

    async def delete_claim(self, claim: Mapping[str, Any], definition: Mapping[str, Any]) -> None:
        async with self.ctx.turn(_claim_key(claim), "claim"):
            await claims.delete_claim(self.ctx, claim, definition)

    async def reconcile_composite(self, composite: Mapping[str, Any], definition: Mapping[str, Any]) -> None:
        await composites.reconcile_composite(self.ctx, composite, definition)

    async def delete_composite(self, composite: Mapping[str, Any], definition: Mapping[str, Any]) -> None:
        await deletion.delete_composite(self.ctx, composite, definition)


def _claim_key(claim: Mapping[str, Any]) -> str:
    meta = claim.get("metadata") or {}
    return f"claim/{meta.get('namespace')}/{meta.get('name')}"
