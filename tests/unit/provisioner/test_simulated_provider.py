"""The simulated provider: a cluster that exists only in the provisioner's memory.

Cases: ensure reports Ready at once with an endpoint and a kubeconfig naming the cluster, and serves
the cluster's API itself; what is applied is kept and read back, status merged and kept across a
later apply, deleted objects gone; a Deployment is ready at once, its status written as its
controller would; the agent counts as running until the cluster is deleted, which forgets it all.
"""

from __future__ import annotations

import asyncio

from provisioner.providers.base import ClusterSpec, Phase
from provisioner.providers.simulated import MemoryObjects, SimulatedProvider

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "maestro-agent", "namespace": "agents"},
    "spec": {"replicas": 2},
}


def test_a_simulated_cluster_is_ready_at_once_and_serves_its_api() -> None:
    provider = SimulatedProvider()
    state = asyncio.run(provider.ensure(ClusterSpec("sim-1", version="1.37", node_count=3)))
    assert state.phase is Phase.READY
    assert state.endpoint == "https://sim-1.simulated.fleetplane.local"
    assert state.kubeconfig is not None and state.kubeconfig["current-context"] == "sim-1"
    assert state.details == {"nodeCount": "3", "version": "1.37"}
    assert isinstance(provider.cluster_objects("sim-1"), MemoryObjects)
    assert provider.cluster_objects("other") is None


def test_what_is_applied_is_kept_with_its_status() -> None:
    async def scenario() -> None:
        api = MemoryObjects()
        applied = await api.apply(DEPLOYMENT, field_manager="test")
        assert applied["metadata"]["resourceVersion"] == "1"
        await api.patch_status(DEPLOYMENT, {"status": {"readyReplicas": 2}})
        await api.apply({**DEPLOYMENT, "spec": {"replicas": 3}}, field_manager="test")
        found = await api.get(DEPLOYMENT)
        assert found is not None
        assert found["spec"] == {"replicas": 3} and found["status"] == {"readyReplicas": 2}
        assert await api.delete(DEPLOYMENT) is True
        assert await api.get(DEPLOYMENT) is None
        assert await api.delete(DEPLOYMENT) is False

    asyncio.run(scenario())


def test_workloads_are_ready_at_once_and_the_agent_lives_with_the_cluster() -> None:
    async def scenario() -> None:
        provider = SimulatedProvider()
        await provider.ensure(ClusterSpec("sim-2"))
        api = provider.cluster_objects("sim-2")
        assert isinstance(api, MemoryObjects)
        applied = await api.apply(DEPLOYMENT, field_manager="test")
        assert await provider.run_workload("sim-2", api, applied) == (True, "2/2 replicas ready")
        stored = await api.get(DEPLOYMENT)
        assert stored is not None and stored["status"]["readyReplicas"] == 2
        assert provider.agent_alive("sim-2")
        assert (await provider.delete(ClusterSpec("sim-2"))).phase is Phase.DELETED
        assert not provider.agent_alive("sim-2")
        assert provider.cluster_objects("sim-2") is None

    asyncio.run(scenario())
