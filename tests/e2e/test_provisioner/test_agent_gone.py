"""A claim whose cluster's Maestro agent is gone is deleted all the same, naming the works it left.

The module's own provisioner and Maestro server (``platform``), the server dropping an unconfirmed
delete after ``MAESTRO_DELETION_GRACE``: short, as nothing here waits for a live agent to confirm
one (``test_claims`` keeps the long grace its live agents need on a loaded machine). The agent dies
while the provisioner is down and the claim is deleted meanwhile: once Maestro has dropped the
deletes its agent will never confirm, the deletion completes, an ``Orphaned`` Event names the
works left on the cluster, and none of the cluster's processes is left.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from localinfra import kubectl, process
from localinfra.environment import Environment
from maestro.api import bundles
from tests.e2e.test_provisioner.kit import (
    CONFIGMAPS_IN_DEFAULT,
    TEAM,
    Platform,
    claim,
    configmap,
    events,
    maestro_client,
)

pytestmark = pytest.mark.e2e
#: Maestro drops a delete its agent did not confirm within this (the module's Maestro server's
#: --deletion-grace): the agent here is gone, so the deletion waits this long for nothing. Under
#: the provisioner's 10 s check of orphaned works, so that one check finds them dropped.
MAESTRO_DELETION_GRACE = 8.0


async def test_a_deletion_whose_agent_is_gone_completes_and_names_the_orphaned_works(
    platform: Platform,
) -> None:
    name = f"agentless-{uuid.uuid4().hex[:5]}"
    await asyncio.to_thread(
        kubectl.apply,
        platform.hub.kubeconfig,
        [claim(name, platform.apps_repo, {"env": "agentless"}, CONFIGMAPS_IN_DEFAULT)],
    )
    await platform.eventually(f"claim {name} Ready", lambda: platform.ready(name))
    cluster = (await platform.claim(name) or {})["spec"]["resourceRef"]["name"]
    work = uuid.uuid4()
    manifest = configmap("left-behind", {"sent": "through maestro"})
    async with maestro_client(platform) as client:
        await client.apply(cluster, work, bundles.ManifestBundle(manifests=[manifest]))

        async def applied() -> tuple[bool, Any]:
            summary = await client.get_summary(work)
            status = summary.record().status
            return status is not None, status

        await platform.eventually("the work applied by the agent", applied, timeout=120)

    # The agent dies while the provisioner is down, and the claim is deleted meanwhile (its
    # composite too, so no pass on restart starts the agent again).
    platform.provisioner.stop()
    Environment(platform.clusters.root).stop_processes(f"{cluster}/maestro-agent")
    for kind, *where in (("clusterclaim", name, "-n", TEAM), ("workercluster", cluster)):
        await asyncio.to_thread(kubectl.run, platform.hub.kubeconfig, "delete", kind, *where, "--wait=false")
    platform.provisioner.start()

    async def gone() -> tuple[bool, Any]:
        return await platform.claim(name) is None, None

    # Maestro drops the unconfirmed delete after its grace period; the deletion then completes.
    await platform.eventually(f"claim {name} deleted", gone, timeout=MAESTRO_DELETION_GRACE + 240)
    messages = await platform.eventually("an Orphaned event", events(platform, "Orphaned"), timeout=60)
    mine = [m for m in messages if cluster in m and "without its Maestro agent" in m]
    assert mine and str(work) in mine[0], messages
    assert not [
        n
        for n, r in Environment(platform.clusters.root).processes.items()
        if n.startswith(f"{cluster}/") and process.is_alive(r)
    ]
