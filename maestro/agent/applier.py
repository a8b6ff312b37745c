"""The `Applier` protocol the agent's loop (`agent_loop.Agent`) drives, and what its calls return.

The loop calls `start`, then `load_records` to learn what this
cluster already holds for the consumer, then `apply` for every spec create/update, `delete` for a
delete (again, until `DeleteResult.done`), and `observe` whenever it refreshes status. Two
implementations: `kube.KubeApplier` (a real cluster) and `memory.MemoryApplier` (simulated agents
in benchmarks); both are `bundle_applier.BundleApplier` over a backend, so they behave the same.

Bundles are the plain ManifestBundle JSON payload (a mapping with `manifests`, `manifestConfigs`,
`deleteOption`); nothing here depends on the server's domain types. No method raises for a bad
manifest or a failed write: those are reported in the result, so the status can say what failed.
`load_records` and `observe` raise `errors.ClusterUnavailableError` when the cluster cannot be
reached for their whole retry budget; the loop tries again later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from maestro.agent.manifests import ManifestMeta
from maestro.agent.records import AppliedRecord, AppliedResource

JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ManifestOutcome:
    """What became of one manifest: written (or, for ReadOnly, read) or not, and the live object."""

    meta: ManifestMeta
    applied: bool
    error: str | None = None
    live: JsonObject | None = None
    strategy: str = ""
    # Created/written as this bundle's own: recorded, and deleted with the bundle. False for
    # ReadOnly manifests and for objects that existed before without our marker.
    owned: bool = False


@dataclass(frozen=True, slots=True)
class ApplyResult:
    resource_id: str
    version: int
    outcomes: tuple[ManifestOutcome, ...]
    # The record as it now is in the cluster (None only if even the first write of it failed).
    record: AppliedRecord | None
    # Objects a previous version had and this one dropped: deleted, or left in place when orphaned.
    pruned: tuple[AppliedResource, ...] = ()
    orphaned: tuple[AppliedResource, ...] = ()
    # Failures that are not one manifest's: the record could not be written, a prune failed.
    errors: tuple[str, ...] = ()
    # The cluster already holds a newer version; nothing was done.
    stale: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors and all(o.applied for o in self.outcomes)


@dataclass(frozen=True, slots=True)
class DeleteResult:
    resource_id: str
    # Everything that had to go is gone and the record is removed: report `Deleted`.
    done: bool
    deleted: tuple[AppliedResource, ...] = ()
    orphaned: tuple[AppliedResource, ...] = ()
    # Foreground deletes still in progress (finalizers, dependents): call `delete` again later.
    remaining: tuple[AppliedResource, ...] = ()
    errors: tuple[str, ...] = ()
    version: int = 0


class Applier(Protocol):
    """Applies bundles to one cluster for one consumer and remembers what it applied."""

    consumer: str

    async def start(self) -> None:
        """Prepare the cluster side (the record CRD); idempotent."""

    async def close(self) -> None: ...

    async def load_records(self) -> dict[str, AppliedRecord]:
        """Every record of this consumer in the cluster, by resource id (also cached for `record`)."""
        ...

    def record(self, resource_id: str) -> AppliedRecord | None:
        """The cached record of a bundle (after `load_records` or the applier's own writes)."""
        ...

    def records(self) -> list[AppliedRecord]:
        """Every cached record (what `load_records` found and the applier's writes since)."""
        ...

    async def apply(self, resource_id: str, version: int, bundle: Mapping[str, Any]) -> ApplyResult:
        """Apply every manifest, record what is ours, delete what the previous version dropped."""
        ...

    async def delete(
        self, resource_id: str, bundle_or_record: Mapping[str, Any] | AppliedRecord | None = None
    ) -> DeleteResult:
        """Remove what the bundle applied, honouring its deleteOption (from the argument if it
        carries one, else from the record); idempotent, and done when there is no record."""
        ...

    async def observe(self, resource_id: str) -> list[JsonObject | None]:
        """The live object of each recorded manifest, in ordinal order; None when absent."""
        ...
