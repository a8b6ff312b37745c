"""Each cluster's identities: its agent's certificate of its Maestro registration and its services'
certificates, issued by the platform CA into Secrets on the cluster, renewed when due, and revoked
when the cluster is deleted."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from kubeio import objects
from kubeio.errors import KubeError
from provisioner import identity, render
from provisioner.reconciler.context import FIELD_MANAGER, Context

log = logging.getLogger(__name__)


async def ensure(
    ctx: Context, composite: Mapping[str, Any], obj: Mapping[str, Any], worker: objects.Objects
) -> tuple[bool, str]:
    """An identity's certificate in its Secret on the cluster, issued or renewed."""
    ca = ctx.settings.authority
    if ca is None:
        raise ValueError(
            "this provisioner has no CA to issue cluster identities: start it with --ca-dir "
            "(the platform CA's ca.crt and ca.key)"
        )
    wanted = identity.request(obj)
    if wanted.service:
        who = wanted.identity("")  # a service's identity names no incarnation
    else:
        consumer = await ctx.maestro.get_consumer(wanted.consumer)
        who = wanted.identity(consumer.placement_slot)
    current = await worker.get(identity.secret_ref(wanted))
    kafka_ca = ctx.settings.kafka_ca
    reason = identity.reissue_reason(current, wanted, who, ca, kafka_ca=kafka_ca)
    if reason is None and current is not None:
        return True, identity.describe(current)
    issued = identity.issued_secret(wanted, who, ca, kafka_ca=kafka_ca)
    await worker.apply(issued, field_manager=FIELD_MANAGER)
    for patch in identity.restart_patches(wanted, issued):
        # A workload the composition has not made yet will start on this certificate; the patch
        # would try to create it from an annotation alone.
        if await worker.get(patch) is None:
            continue
        # A manager of its own, so the composition's next apply of the workload leaves it be.
        await worker.apply(patch, field_manager=identity.rollout_manager(wanted))
    ctx.report(composite, "Normal", "CertificateIssued", f"{identity.describe(issued)} ({reason})")
    return True, identity.describe(issued)


async def revoke(ctx: Context, name: str, resources: Sequence[render.ComposedResource]) -> None:
    """Revoke the certificate each identity Secret of the cluster holds: a copy kept elsewhere
    must not outlive the cluster (its incarnation already dies with the consumer; this also
    covers a server that outlives the revocation of the incarnation)."""
    worker = ctx.clusters.get(name)
    if worker is None:
        return  # the cluster was never reached by this process: its incarnation still dies
    for resource in resources:
        if resource.target != "identity":
            continue
        try:
            wanted = identity.request(resource.object)
            secret = await worker.get(identity.secret_ref(wanted))
        except (KubeError, ValueError) as exc:
            log.warning("cluster %s: cannot read its identity Secret to revoke it: %s", name, exc)
            continue
        serial = identity.serial_of(secret, wanted)
        if serial is not None:
            await ctx.maestro.revoke_certificate(serial, f"cluster {name} deleted")
