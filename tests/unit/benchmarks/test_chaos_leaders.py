"""The kills of the operators' leaders, as the chaos suite and ``bench chaos`` judge them: the
workloads' plans, who leads, and when the outcome is exact (what the hub, Maestro and the
clusters hold)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.chaos import appsets, claims, leaders
from benchmarks.chaos.cluster_store import ClusterView, LoggedBackend
from maestro.agent.manifests import ObjectRef
from maestro.agent.memory import MemoryApplier


def _app(name: str, path: str, sync: str | None = "Synced", health: str | None = "Healthy") -> dict[str, Any]:
    status = {} if sync is None else {"sync": {"status": sync}, "health": {"status": health}}
    return {"metadata": {"name": name}, "spec": {"source": {"path": path}}, "status": status}


PLAN = appsets.Plan.of("r1", 6, ["east", "west"])


def _exact() -> appsets.Snapshot:
    """What the hub, Maestro and the clusters hold once the run's outcome is exact."""
    intended = PLAN.intended()
    return appsets.Snapshot(
        works={(n, c): 1 for c, apps in intended.items() for n in PLAN.names if f"{c}-{n}" in apps},
        appsets={n for i, n in enumerate(PLAN.names) if not appsets.deleted(i)},
        hub=appsets.by_name(_app(name, path) for apps in intended.values() for name, path in apps.items()),
        clusters={c: appsets.by_name(_app(n, p) for n, p in apps.items()) for c, apps in intended.items()},
        outbox=0,
    )


def test_a_third_of_the_application_sets_change_and_a_fifth_are_deleted_never_both() -> None:
    changed = [i for i in range(15) if appsets.changed(i)]
    deleted = [i for i in range(15) if appsets.deleted(i)]
    assert changed == [0, 3, 6, 12] and deleted == [4, 9, 14]
    assert PLAN.names == ("cr1-0000", "cr1-0001", "cr1-0002", "cr1-0003", "cr1-0004", "cr1-0005")
    assert PLAN.applications == 12 and all(n.startswith(PLAN.prefix) for n in PLAN.names)
    intended = PLAN.intended()
    # the fifth (index 4) is gone from both clusters; the first and fourth are at the new template
    assert sorted(intended["east"]) == [f"east-cr1-000{i}" for i in (0, 1, 2, 3, 5)]
    assert intended["west"]["west-cr1-0000"] == "apps-v2" and intended["west"]["west-cr1-0001"] == "apps"


def test_application_sets_times_clusters_make_about_the_works_asked_for() -> None:
    assert appsets.count_for(2000, 4) == 500
    assert appsets.count_for(100, 3) == 33
    assert appsets.count_for(1, 4) == 1


def test_the_exact_outcome_has_nothing_pending() -> None:
    assert appsets.pending(PLAN, _exact()) == []


def test_a_duplicate_work_or_a_deleted_application_sets_work_is_pending() -> None:
    exact = _exact()
    works = {**exact.works, ("cr1-0001", "east"): 2, ("cr1-0004", "west"): 1}
    left = appsets.pending(PLAN, appsets.Snapshot(works, exact.appsets, exact.hub, exact.clusters, 0))
    assert left == ["work of ('cr1-0001', 'east'): 2", "work of deleted ('cr1-0004', 'west'): 1"]


def test_an_application_at_its_old_template_or_held_twice_is_pending() -> None:
    exact = _exact()
    east = {**exact.clusters["east"], "east-cr1-0000": [_app("east-cr1-0000", "apps")]}
    hub = {**exact.hub, "west-cr1-0001": [_app("west-cr1-0001", "apps")] * 2}
    left = appsets.pending(
        PLAN, appsets.Snapshot(exact.works, exact.appsets, hub, {**exact.clusters, "east": east}, 0)
    )
    assert left == [
        "east-cr1-0000: source path ('apps', 'apps-v2') (cluster, hub), not apps-v2",
        "west-cr1-0001: 1 on west, 2 on the hub",
    ]


def test_a_hub_mirror_must_show_its_clusters_status() -> None:
    exact = _exact()
    hub = {**exact.hub, "east-cr1-0002": [_app("east-cr1-0002", "apps", None)]}
    left = appsets.pending(PLAN, appsets.Snapshot(exact.works, exact.appsets, hub, exact.clusters, 0))
    assert left == ["east-cr1-0002: hub status ('Unknown', 'Unknown'), east's ('Synced', 'Healthy')"]


def test_what_a_deleted_application_set_leaves_and_the_outbox_are_pending() -> None:
    exact = _exact()
    left_over = [_app("east-cr1-0004", "apps")]
    clusters = {**exact.clusters, "east": {**exact.clusters["east"], "east-cr1-0004": left_over}}
    snapshot = appsets.Snapshot(
        exact.works, {*exact.appsets, "cr1-0004"}, {**exact.hub, "east-cr1-0004": left_over}, clusters, 3
    )
    assert appsets.pending(PLAN, snapshot) == [
        "ApplicationSet cr1-0004 not deleted",
        "hub Application east-cr1-0004 left",
        "east: Application east-cr1-0004 left",
        "outbox: 3 rows",
    ]


def test_a_status_sequence_id_sent_twice_is_found() -> None:
    assert appsets.sent_twice({"w1": [1, 2, 3], "w2": [4, 5, 4]}) == {"w2": [4, 5, 4]}


def test_a_tenth_of_the_works_are_claims_and_never_fewer_than_twenty() -> None:
    assert claims.count_for(2000) == 200
    assert claims.count_for(100) == 20


def _claim(name: str, ready: bool) -> dict[str, Any]:
    condition = {"type": "Ready", "status": "True" if ready else "False"}
    return {"metadata": {"name": name}, "status": {"conditions": [condition]}}


def test_claims_are_provisioned_once_each_ready_with_one_consumer_and_one_entry() -> None:
    names = ["a", "b"]
    assert claims.ready([_claim("b", True), _claim("a", False), {"metadata": {"name": "c"}}]) == ["b"]
    done = claims.Snapshot(["a", "b"], names, ["ca", "cb"], ["ia", "ib"])
    assert claims.pending_provisioned(names, done) == []
    twice = claims.Snapshot(["a"], names, ["ca", "ca"], ["ia", "ib", "ib"])
    assert claims.pending_provisioned(names, twice) == [
        "1/2 claims not Ready, e.g. ['b']",
        "2 consumers (1 distinct) for 2 claims",
        "3 inventory entries (2 distinct) for 2 claims",
    ]


def test_deleted_claims_leave_nothing_behind() -> None:
    assert claims.pending_gone(claims.Snapshot([], [], [], [])) == []
    assert claims.pending_gone(claims.Snapshot([], ["a"], [], ["ia"])) == [
        "1 claims left",
        "1 inventory entries left",
    ]


def test_the_replica_holding_the_lease_leads_and_the_other_stands_by(tmp_path: Path) -> None:
    log = tmp_path / "replica.log"
    assert leaders.identity_in(log) is None
    log.write_text("INFO kubeio.leader: Lease default/controllers-x: trying to lead as hub-1.abc\n")
    assert leaders.identity_in(log) == "hub-1.abc"
    assert leaders.leader_and_standby("two", {"r1": "one", "r2": "two"}) == ("r2", "r1")
    assert leaders.leader_and_standby("", {"r1": "one", "r2": "two"}) is None
    assert leaders.leader_and_standby("three", {"r1": "one", "r2": None}) is None


async def test_a_simulated_clusters_applications_of_the_run_are_read_from_its_file(tmp_path: Path) -> None:
    state = tmp_path / "cluster.jsonl"
    applier = MemoryApplier("east", backend=LoggedBackend(state))

    def application(name: str, run: str) -> dict[str, Any]:
        return {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": name, "namespace": "argocd", "labels": {appsets.RUN_LABEL: run}},
            "spec": {"source": {"path": "apps"}},
        }

    await applier.apply("00000000-0000-0000-0000-000000000001", 1, {"manifests": [application("a", "r1")]})
    await applier.apply("00000000-0000-0000-0000-000000000002", 1, {"manifests": [application("b", "r2")]})
    await applier.backend.get(ObjectRef("argoproj.io", "v1alpha1", "applications", "argocd", "a"))
    held = appsets.applications_in(ClusterView(state).refresh().objects, "r1")
    assert list(held) == ["a"]
    assert appsets.synced_and_healthy(held["a"][0]) == ("Synced", "Healthy")
    await applier.close()


def test_a_run_id_is_never_read_as_a_number() -> None:
    # kubectl's YAML reads an unquoted 1e5432 as a number, which a label value cannot be
    ids = {leaders.run_id() for _ in range(200)}
    assert len(ids) == 200 and all(i[0] == "r" and len(i) == 6 for i in ids)
