"""A leader releasing its Lease after a renewal it gave up on has already landed."""

from __future__ import annotations

from typing import Any, cast

from kubeio.errors import ConflictError
from kubeio.leader import LeaderElector
from kubeio.lease import LeaderElection, Record, Sighting
from kubeio.rest import KubeRest


class LeaseStore:
    """One Lease with optimistic concurrency, as the API server keeps it."""

    def __init__(self, holder: str) -> None:
        self.version = 7
        self.spec: dict[str, Any] = {"holderIdentity": holder, "leaseDurationSeconds": 15}

    def lease(self) -> dict[str, Any]:
        return {"metadata": {"resourceVersion": str(self.version)}, "spec": dict(self.spec)}

    async def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        if method == "GET":
            return self.lease()
        assert method == "PUT" and body is not None
        if body["metadata"].get("resourceVersion") != str(self.version):
            raise ConflictError("the object has been modified")
        self.version += 1
        self.spec = dict(body["spec"])
        return self.lease()


def elector_holding(store: LeaseStore, version: str) -> LeaderElector:
    settings = LeaderElection(name="ops", namespace="fleetplane", identity="replica-a")
    elector = LeaderElector(cast(KubeRest, store), settings)
    elector._sighting = Sighting(Record("replica-a", 15), 0.0)
    elector._version = version
    return elector


async def test_a_release_on_a_stale_version_reads_the_lease_again_and_gives_it_up() -> None:
    store = LeaseStore(holder="replica-a")
    elector = elector_holding(store, version="6")  # a renewal cancelled in flight made it 7

    await elector.release()

    assert store.spec["holderIdentity"] == ""
    assert store.spec["leaseDurationSeconds"] == 1


async def test_a_release_leaves_a_lease_another_replica_took_alone() -> None:
    store = LeaseStore(holder="replica-b")
    elector = elector_holding(store, version="6")

    await elector.release()

    assert store.spec["holderIdentity"] == "replica-b"
    assert store.version == 7
