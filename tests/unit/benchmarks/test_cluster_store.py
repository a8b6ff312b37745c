"""A simulated cluster kept in a file: an agent started again on it finds what it applied, and a
reader in another process sees each whole write as it lands, as the outcome's rules read it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.chaos import outcome
from benchmarks.chaos.cluster_store import ClusterView, LoggedBackend
from maestro.agent.manifests import ObjectRef
from maestro.agent.memory import MemoryApplier

CM = ("", "configmaps", "chaos")


def _bundle(name: str, revision: int) -> dict[str, Any]:
    manifest = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "chaos"},
        "data": {"revision": str(revision)},
    }
    return {"manifests": [manifest]}


async def test_a_restarted_agent_finds_what_it_applied_and_counts_on(tmp_path: Path) -> None:
    state = tmp_path / "cluster.jsonl"
    first = MemoryApplier("c1", backend=LoggedBackend(state))
    await first.apply("00000000-0000-0000-0000-000000000001", 1, _bundle("a", 1))
    await first.apply("00000000-0000-0000-0000-000000000002", 1, _bundle("b", 1))
    await first.apply("00000000-0000-0000-0000-000000000001", 2, _bundle("a", 2))
    await first.delete("00000000-0000-0000-0000-000000000002")
    before = first.backend.objects[(*CM, "a")]
    # killed: nothing flushed or closed on the way out

    again = MemoryApplier("c1", backend=LoggedBackend(state))
    records = await again.load_records()
    assert {rid: r.version for rid, r in records.items()} == {"00000000-0000-0000-0000-000000000001": 2}
    assert set(again.backend.objects) == {(*CM, "a")}
    assert again.backend.objects[(*CM, "a")] == before
    await again.apply("00000000-0000-0000-0000-000000000003", 1, _bundle("c", 1))
    uids = {o["metadata"]["uid"] for o in again.backend.objects.values()}
    assert len(uids) == 2  # the new object's uid is not one the cluster gave before
    await again.close()


async def test_a_reader_sees_whole_writes_only(tmp_path: Path) -> None:
    state = tmp_path / "cluster.jsonl"
    applier = MemoryApplier("c1", backend=LoggedBackend(state))
    view = ClusterView(state).refresh()
    assert view.objects == {} and view.records == {}
    await applier.apply("00000000-0000-0000-0000-000000000001", 1, _bundle("a", 1))
    with state.open("ab") as f:
        f.write(b'{"object": ["", "configmaps", "chaos", "half')  # a write under way
    view.refresh()
    assert set(view.objects) == {(*CM, "a")}
    # the record as the outcome's rules read it: one version, owning the live object
    [record] = [outcome.applied_record_of(r) for r in view.records.values()]
    uid = view.objects[(*CM, "a")]["metadata"]["uid"]
    assert record == outcome.AppliedRecord("00000000-0000-0000-0000-000000000001", 1, (("a", uid),))
    await applier.close()


async def test_an_applications_status_written_by_the_simulated_argo_cd_reaches_the_file(
    tmp_path: Path,
) -> None:
    state = tmp_path / "cluster.jsonl"
    applier = MemoryApplier("c1", backend=LoggedBackend(state))
    app = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "guestbook", "namespace": "argocd"},
        "spec": {"source": {"path": "apps"}},
    }
    await applier.apply("00000000-0000-0000-0000-000000000001", 1, {"manifests": [app]})
    ref = ObjectRef("argoproj.io", "v1alpha1", "applications", "argocd", "guestbook")
    read = await applier.backend.get(ref)  # as the agent reads it: the status is due, and written
    assert read is not None and read["status"]["sync"]["status"] == "Synced"
    held = ClusterView(state).refresh().objects[ref.key]
    assert (held["status"]["sync"]["status"], held["status"]["health"]["status"]) == ("Synced", "Healthy")
