"""The controllers' I/O side against in-memory fakes of the hub and Maestro (``fakes.py``).

Cases, propagation: a first pass creates a work and a mirror per cluster and a second pass changes
nothing; a template change updates every work and mirror; a cluster leaving the inventory loses its
work and mirror only; a pass renders again only when the spec or the generators' inputs changed, and
the plan it keeps holds no documents (a pass that repairs a lost work or mirror renders them again);
an unregistered Maestro consumer and an unknown generator become problems (nothing created or
deleted); deletion deletes the works, waits for them to be gone, then deletes the mirrors; the sweep
deletes the works of an ApplicationSet that no longer exists; RollingSync delivers every Application
with automated sync off and asks step 2 to sync only once step 1 is Healthy; a hub name held by
another Application keeps its target undeployed; the daemon passes when woken, reports each distinct
problem once and exits when stopped. Status: a report becomes the mirror's status and rolls up into
the ApplicationSet's; an older report is dropped; a status that arrived before its mirror is written
once the mirror exists, with the mirror when the propagation writes it (and kept through later
applies); a status waits until its mirror is known to exist; a mirror waits (bounded) for the status
its cluster reports for its work's new spec and is written with it, with no patch of its own, and is
written without it when none comes; a failed pass hands the statuses it held back to the status
writer; a pass writing its mirrors lets another ApplicationSet's pass send its works; a deleted work
forgets its Application.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import uuid
from collections.abc import Callable, Mapping
from typing import Any, cast

import pytest

from controllers import contract
from controllers.propagation import controller as propagation
from controllers.propagation import plan
from controllers.propagation.mirror_cache import MirrorCache
from controllers.propagation.outcome import Outcome
from controllers.propagation.settings import PropagationSettings
from controllers.status import batching, book
from controllers.status import controller as status
from maestro.api import bundles
from tests.unit.controllers import builders, fakes

KEY = ("apps", "guestbook")


class World:
    def __init__(self, consumers: tuple[str, ...] = ("c1", "c2"), *, cached: bool = False) -> None:
        self.hub = fakes.FakeHub()
        self.maestro = fakes.FakeMaestro(contract.MAESTRO_SOURCE, consumers)
        self.listener = fakes.Listener()
        self.book = book.StatusBook()
        self.hub.secrets = [builders.cluster_secret("c1"), builders.cluster_secret("c2")]
        self.hub.appsets[KEY] = builders.appset()
        #: with ``cached``, the mirrors as a watch would show them (events fed by the test)
        self.cache = MirrorCache(cast(Any, self.hub)) if cached else None
        if self.cache is not None:
            self.cache._listed([])
        self.controller = propagation.PropagationController(
            cast(Any, self.hub), cast(Any, self.maestro), self.book, self.listener, mirror_cache=self.cache
        )

    async def reconcile(self) -> Outcome:
        outcome = await self.controller.reconcile(*KEY)
        assert outcome is not None
        return outcome

    def repos(self) -> dict[str, str]:
        return {
            r.bundle.consumer: r.bundle.manifests[0]["spec"]["source"]["repoURL"]
            for r in self.maestro.records.values()
        }


async def test_first_pass_creates_and_second_changes_nothing() -> None:
    world = World()
    first = await world.reconcile()
    assert (first.created, first.mirrors_applied, first.problems) == (2, 2, ())
    assert sorted(r.bundle.consumer for r in world.maestro.records.values()) == ["c1", "c2"]
    mirror = world.hub.applications[("apps", "c1-guestbook")]
    assert mirror["metadata"]["annotations"][contract.ARGOCD_SKIP_RECONCILE] == "true"
    assert mirror["metadata"]["ownerReferences"][0]["uid"] == "0b3c-uid"
    assert sorted(world.listener.created) == [("apps", "c1-guestbook"), ("apps", "c2-guestbook")]
    facts = world.book.facts(KEY)
    assert facts is not None and [a.name for a in facts.apps] == ["c1-guestbook", "c2-guestbook"]

    writes = len(world.hub.writes)
    second = await world.reconcile()
    assert (second.created, second.updated, second.deleted, second.mirrors_applied) == (0, 0, 0, 0)
    assert len(world.hub.writes) == writes, "an unchanged mirror must cost no write"


async def test_template_change_updates_every_work_and_mirror() -> None:
    world = World()
    await world.reconcile()
    world.hub.appsets[KEY]["spec"]["template"]["spec"]["source"]["repoURL"] = "https://git.example/new.git"
    outcome = await world.reconcile()
    assert (outcome.created, outcome.updated, outcome.mirrors_applied) == (0, 2, 2)
    assert set(world.repos().values()) == {"https://git.example/new.git"}
    assert {r.bundle.version for r in world.maestro.records.values()} == {2}
    mirror = world.hub.applications[("apps", "c2-guestbook")]
    assert mirror["spec"]["source"]["repoURL"] == "https://git.example/new.git"


async def test_a_changed_mirror_loses_what_the_template_dropped_and_keeps_what_others_wrote() -> None:
    world = World()
    world.hub.appsets[KEY]["spec"]["template"]["metadata"]["labels"] = {"team": "blue"}
    await world.reconcile()
    key = ("apps", "c1-guestbook")
    stored = world.hub.applications[key]
    assert stored["metadata"]["labels"]["team"] == "blue"
    # what others write on a mirror: the status controller its status, argocd-server an operation
    stored["status"] = {"sync": {"status": "Synced"}}
    stored["operation"] = {"sync": {"revision": "abc"}}

    del world.hub.appsets[KEY]["spec"]["template"]["metadata"]["labels"]
    outcome = await world.reconcile()

    assert outcome.mirrors_applied == 2
    mirror = world.hub.applications[key]
    assert "team" not in mirror["metadata"]["labels"], "a label the template dropped is gone"
    assert mirror["status"] == {"sync": {"status": "Synced"}}
    assert mirror["operation"] == {"sync": {"revision": "abc"}}
    assert sorted(world.hub.writes[-2:]) == [("replace", *key), ("replace", "apps", "c2-guestbook")]


async def test_a_mirror_changed_between_its_read_and_its_replacement_is_read_again() -> None:
    world = World()
    await world.reconcile()
    key = ("apps", "c1-guestbook")
    replace = world.hub.replace_application
    raced = []

    async def racing(application: Mapping[str, Any], *, field_manager: str) -> dict[str, Any]:
        if not raced:  # a status lands after the propagation read the mirror
            raced.append(True)
            await world.hub.replace_application_status(*key, {"sync": {"status": "Synced"}})
        return await replace(application, field_manager=field_manager)

    world.hub.replace_application = racing  # type: ignore[method-assign]
    world.hub.appsets[KEY]["spec"]["template"]["spec"]["source"]["repoURL"] = "https://git.example/new.git"
    outcome = await world.reconcile()

    assert outcome.problems == () and outcome.mirrors_applied == 2
    mirror = world.hub.applications[key]
    assert mirror["spec"]["source"]["repoURL"] == "https://git.example/new.git"
    assert mirror["status"] == {"sync": {"status": "Synced"}}, "the status written meanwhile is kept"


async def test_passes_read_the_mirrors_they_wrote_from_the_cache_without_listing_them() -> None:
    world = World(cached=True)
    first = await world.reconcile()
    assert (first.created, first.mirrors_applied) == (2, 2)
    second = await world.reconcile()
    assert (second.created, second.mirrors_applied, second.changed) == (0, 0, False)
    assert world.hub.mirror_lists == 0
    # someone deletes a mirror by hand: once the watch tells, the next pass writes it again
    gone = world.hub.applications.pop(("apps", "c2-guestbook"))
    assert world.cache is not None
    world.cache._changed("DELETED", gone)
    third = await world.reconcile()
    assert (third.created, third.mirrors_applied) == (0, 1)
    assert ("apps", "c2-guestbook") in world.hub.applications


async def test_a_finalizer_lists_the_mirrors_it_deletes_instead_of_trusting_the_cache() -> None:
    world = World(cached=True)
    await world.reconcile()
    assert world.cache is not None
    world.cache._listed([])  # a watch that has not seen them yet
    spec = world.hub.appsets[KEY]["spec"]
    await world.controller.finalize(*KEY, spec)
    world.maestro.confirm_deletions()
    assert await world.controller.finalize(*KEY, spec) == 0
    assert not world.hub.applications


async def test_cluster_leaving_the_inventory_loses_only_its_app() -> None:
    world = World()
    await world.reconcile()
    world.hub.secrets = [builders.cluster_secret("c1")]
    world.controller.inventory_changed()
    outcome = await world.reconcile()
    assert (outcome.deleted, outcome.mirrors_deleted) == (1, 1)
    deleting = {r.bundle.consumer: r.bundle.deleting for r in world.maestro.records.values()}
    assert deleting == {"c1": False, "c2": True}
    assert ("apps", "c2-guestbook") not in world.hub.applications
    assert world.listener.deleted == [("apps", "c2-guestbook")]


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per plan rendered."""
    counted: list[int] = []
    real = plan.plan_application_set

    def counting(*args: Any, **kwargs: Any) -> Any:
        counted.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(plan, "plan_application_set", counting)
    return counted


async def test_a_pass_renders_again_only_when_the_spec_or_the_inventory_changed(renders: list[int]) -> None:
    world = World(consumers=("c1", "c2", "c3"))
    await world.reconcile()
    world.controller.inventory_changed()  # re-listed, but the same clusters
    await world.reconcile()
    assert len(renders) == 1

    world.hub.secrets.append(builders.cluster_secret("c3"))
    world.controller.inventory_changed()
    outcome = await world.reconcile()
    assert len(renders) == 2
    assert (outcome.created, outcome.mirrors_applied) == (1, 1)

    world.hub.appsets[KEY]["spec"]["template"]["spec"]["source"]["repoURL"] = "https://git.example/new.git"
    outcome = await world.reconcile()
    assert len(renders) == 3
    assert outcome.updated == 3
    assert set(world.repos().values()) == {"https://git.example/new.git"}


async def test_the_kept_plan_holds_no_documents_and_a_repair_renders_them_again(renders: list[int]) -> None:
    world = World()
    await world.reconcile()
    kept = world.controller._plans[KEY].summary
    assert len(kept.works) == 2 and not kept.rendered
    with pytest.raises(plan.NotRenderedError, match="render the plan again"):
        _ = kept.works[0].bundle

    # Someone deletes a work and a mirror behind the controller's back: the next pass puts them back.
    lost = next(r for r in world.maestro.records.values() if r.bundle.consumer == "c2")
    del world.maestro.records[lost.bundle.id]
    del world.hub.applications[("apps", "c1-guestbook")]
    outcome = await world.reconcile()
    assert (outcome.created, outcome.mirrors_applied) == (1, 1)
    assert sorted(r.bundle.consumer for r in world.maestro.records.values()) == ["c1", "c2"]
    assert world.hub.applications[("apps", "c1-guestbook")]["spec"]["destination"]["name"] == "c1"
    assert len(renders) == 2, "the repair renders once more; the cache still keeps the summary only"
    assert not world.controller._plans[KEY].summary.rendered

    await world.reconcile()
    assert len(renders) == 2, "a pass with nothing to write renders nothing"


async def test_unregistered_consumer_is_a_problem_for_that_cluster_only() -> None:
    world = World(consumers=("c1",))
    outcome = await world.reconcile()
    assert outcome.created == 1
    assert len(outcome.problems) == 1 and "c2" in outcome.problems[0]
    assert "fleetplane maestro consumers create c2" in outcome.problems[0]
    facts = world.book.facts(KEY)
    assert facts is not None and facts.target_errors == outcome.problems


async def test_unknown_generator_creates_and_deletes_nothing() -> None:
    world = World()
    await world.reconcile()
    world.hub.appsets[KEY]["spec"]["generators"] = [{"scmProvider": {}}]
    outcome = await world.reconcile()
    assert outcome.generation_failed and "scmProvider" in outcome.problems[0]
    assert not any(r.bundle.deleting for r in world.maestro.records.values())
    assert len(world.hub.applications) == 2
    rollup = world.book.rollup(KEY, now="2026-01-01T00:00:00Z")
    assert rollup is not None
    conditions = {c["type"]: c for c in rollup.status["conditions"]}
    assert conditions["ParametersGenerated"]["status"] == "False"
    assert "scmProvider" in conditions["ErrorOccurred"]["message"]


async def test_not_opted_in_or_deleting_is_left_alone() -> None:
    world = World()
    world.hub.appsets[KEY]["metadata"]["labels"] = {}
    assert await world.controller.reconcile(*KEY) is None
    world.hub.appsets[KEY] = builders.appset()
    world.hub.appsets[KEY]["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert await world.controller.reconcile(*KEY) is None
    assert not world.maestro.records


async def test_deletion_waits_for_the_works_then_deletes_the_mirrors() -> None:
    world = World()
    await world.reconcile()
    spec = world.hub.appsets[KEY]["spec"]
    assert await world.controller.finalize(*KEY, spec) == 2
    assert all(r.bundle.deleting for r in world.maestro.records.values())
    assert len(world.hub.applications) == 2, "mirrors stay while the clusters still hold the apps"
    assert await world.controller.finalize(*KEY, spec) == 2  # no second delete, still waiting
    assert [c for c, _ in world.maestro.calls].count("delete") == 2
    world.maestro.confirm_deletions()
    assert await world.controller.finalize(*KEY, spec) == 0
    assert not world.hub.applications
    assert world.book.facts(KEY) is None


async def test_sweep_deletes_the_works_of_a_vanished_application_set() -> None:
    world = World()
    await world.reconcile()
    del world.hub.appsets[KEY]
    assert await world.controller.sweep() == 2
    assert all(r.bundle.deleting for r in world.maestro.records.values())
    assert await world.controller.sweep() == 0


def test_the_plan_and_the_client_must_use_one_source() -> None:
    world = World()
    with pytest.raises(ValueError, match="source"):
        propagation.PropagationController(
            cast(Any, world.hub), cast(Any, fakes.FakeMaestro("other")), world.book, world.listener
        )


# --- status ------------------------------------------------------------------------------------------


def reported(world: World, cluster: str, sync: str, sequence: int) -> bundles.BundleRecord:
    record = next(r for r in world.maestro.records.values() if r.bundle.consumer == cluster)
    values = builders.feedback(syncStatus=sync, healthStatus="Healthy")
    report = builders.bundle_status(values)
    return bundles.BundleRecord(
        record.bundle,
        bundles.BundleStatus(report["conditions"], report["resourceStatus"], sequence_id=sequence),
        status_version=record.bundle.version,
    )


def with_status(mirror_status_seconds: float = 0.01) -> tuple[World, status.StatusController]:
    """A world whose propagation tells a status controller about the mirrors it writes (and waits
    that long for a work's status before writing its mirror)."""
    world = World()
    controller = status.StatusController(cast(Any, world.hub), cast(Any, world.maestro), world.book)
    world.controller.listener = controller
    mirror_wait(world, mirror_status_seconds)
    return world, controller


def mirror_wait(world: World, seconds: float) -> None:
    world.controller.settings = dataclasses.replace(world.controller.settings, mirror_status_seconds=seconds)


async def drain(controller: status.StatusController) -> None:
    for one in controller.batcher.drain():
        await controller._write(one)


async def test_a_report_becomes_the_mirror_status_and_rolls_up() -> None:
    world, controller = with_status()
    await world.reconcile()
    controller.observe_record(reported(world, "c1", "Synced", 5))
    controller.observe_record(reported(world, "c1", "OutOfSync", 4))  # older: dropped
    await drain(controller)
    mirror = world.hub.applications[("apps", "c1-guestbook")]
    assert mirror["status"]["sync"]["status"] == "Synced"
    assert mirror["status"]["health"]["status"] == "Healthy"

    for key in world.book.take_dirty():
        result = world.book.rollup(key, now="2026-01-01T00:00:00Z")
        assert result is not None
        assert result.counts.sync == {"Synced": 1, "Unknown": 1}


async def test_the_periodic_list_reads_only_the_statuses_newer_than_those_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world, controller = with_status()
    controller.settings = dataclasses.replace(controller.settings, list_settle_seconds=0.05)
    await world.reconcile()
    record = reported(world, "c1", "Synced", 5)
    world.maestro.records[record.bundle.id] = record
    world.maestro.calls.clear()
    assert await controller.list_once() == 2  # the first list, with every status
    assert world.maestro.calls == [("list", "with status")]
    await drain(controller)
    assert world.hub.applications[("apps", "c1-guestbook")]["status"]["sync"]["status"] == "Synced"

    seen: list[tuple[str, int | None]] = []

    def observe(r: bundles.BundleRecord) -> None:
        seen.append((r.bundle.consumer, r.status.sequence_id if r.status else None))

    controller.observe_record = observe  # type: ignore[method-assign]
    world.maestro.calls.clear()
    assert await controller.list_once() == 2
    assert seen == [("c2", None)]  # c1's report 5 was shown already; c2 has none yet, so it is looked at
    assert world.maestro.calls == [("list", "without status")]

    # c1 reports 6: the watch delivers it while the list settles, so it is not read again
    newer = reported(world, "c1", "OutOfSync", 6)
    world.maestro.records[newer.bundle.id] = newer
    change = fakes.status_update(bundles.StatusChange(rev=8, record=newer))
    asyncio.get_running_loop().call_later(0.01, controller.observe_change, change)
    seen.clear()
    world.maestro.calls.clear()
    await controller.list_once()
    assert seen == [("c2", None)]
    assert world.maestro.calls == [("list", "without status")]

    # c1 reports 7 and the watch misses it: read by itself
    newer = reported(world, "c1", "Synced", 7)
    world.maestro.records[newer.bundle.id] = newer
    seen.clear()
    world.maestro.calls.clear()
    await controller.list_once()
    assert sorted(seen) == [("c1", 7), ("c2", None)]
    assert world.maestro.calls == [("list", "without status"), ("get", str(newer.bundle.id))]

    # past READ_ONE_BY_ONE newer statuses, one list with the statuses reads them all
    monkeypatch.setattr(status, "READ_ONE_BY_ONE", 0)
    seen.clear()
    world.maestro.calls.clear()
    await controller.list_once()
    assert sorted(set(seen)) == [("c1", 7), ("c2", None)]
    assert world.maestro.calls == [("list", "without status"), ("list", "with status")]


async def test_a_status_before_its_mirror_is_written_when_the_mirror_appears() -> None:
    world, controller = with_status()
    await world.reconcile()
    saved = copy.deepcopy(world.hub.applications.pop(("apps", "c2-guestbook")))
    controller.observe_record(reported(world, "c2", "Synced", 3))
    await drain(controller)  # 404: nothing to write to
    assert not controller.batcher.drain()
    world.hub.applications[("apps", "c2-guestbook")] = saved
    controller.mirror_written("apps", "c2-guestbook", None)  # written by something without a status
    await drain(controller)
    assert world.hub.applications[("apps", "c2-guestbook")]["status"]["sync"]["status"] == "Synced"


async def test_a_mirror_is_written_with_the_status_known_then_and_keeps_it_through_updates() -> None:
    world, controller = with_status()
    await world.reconcile()
    await drain(controller)
    # The mirror is lost after its work reported Synced: the next pass writes it back with that
    # status, in one write (no status patch after it).
    del world.hub.applications[("apps", "c2-guestbook")]
    controller.observe_record(reported(world, "c2", "Synced", 3))
    await drain(controller)  # 404: nothing to write to yet
    writes = len(world.hub.writes)
    await world.reconcile()
    await drain(controller)
    assert world.hub.writes[writes:] == [("create", "apps", "c2-guestbook")]
    assert world.hub.applications[("apps", "c2-guestbook")]["status"]["sync"]["status"] == "Synced"

    # A template change applies the mirror again: the status goes with it, not lost.
    world.hub.appsets[KEY]["spec"]["template"]["spec"]["source"]["repoURL"] = "https://git.example/new.git"
    await world.reconcile()
    await drain(controller)
    mirror = world.hub.applications[("apps", "c2-guestbook")]
    assert mirror["spec"]["source"]["repoURL"] == "https://git.example/new.git"
    assert mirror["status"]["sync"]["status"] == "Synced"


async def test_a_status_waits_for_its_mirror_to_be_known_instead_of_patching_blindly() -> None:
    world = World()
    await world.reconcile()  # mirrors written before this status controller existed (a restart)
    controller = status.StatusController(cast(Any, world.hub), cast(Any, world.maestro), world.book)
    world.controller.listener = controller
    controller.observe_record(reported(world, "c1", "Synced", 4))
    assert not controller.batcher.drain(), "no patch to a mirror not known to exist"
    await world.reconcile()  # the pass lists the mirrors: now they are known
    await drain(controller)
    assert world.hub.applications[("apps", "c1-guestbook")]["status"]["sync"]["status"] == "Synced"
    assert [w for w in world.hub.writes if w[0] == "app-status"] == [("app-status", "apps", "c1-guestbook")]


async def test_a_404_that_raced_the_mirror_being_written_again_keeps_the_mirror_known() -> None:
    world, controller = with_status()
    await world.reconcile()
    saved = copy.deepcopy(world.hub.applications.pop(("apps", "c2-guestbook")))
    controller.observe_record(reported(world, "c2", "Synced", 3))
    (patch,) = controller.batcher.drain()  # out now; it will find no mirror
    controller.mirror_written("apps", "c2-guestbook", None)  # the propagation writes it meanwhile,
    await controller._write(patch)  # but the patch lands first: 404
    world.hub.applications[("apps", "c2-guestbook")] = saved  # then the propagation's write lands
    await drain(controller)
    assert world.hub.applications[("apps", "c2-guestbook")]["status"]["sync"]["status"] == "Synced"
    controller.observe_record(reported(world, "c2", "OutOfSync", 4))  # the mirror is still known
    await drain(controller)
    assert world.hub.applications[("apps", "c2-guestbook")]["status"]["sync"]["status"] == "OutOfSync"


async def until(condition: Callable[[], bool]) -> None:
    """Let the controllers' tasks run until ``condition`` holds."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the controllers never got there")


async def soon(condition: Callable[[], bool], seconds: float = 30) -> None:
    """Wait for ``condition`` across real sleeps (a daemon waits on timers, not only on tasks);
    the bound is generous because a loaded machine may starve the loop for seconds."""

    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the daemon never got there"
        await asyncio.sleep(0.01)


async def until_works(world: World, count: int) -> None:
    await until(lambda: len(world.maestro.records) >= count)


async def test_a_new_mirror_waits_for_its_first_status_and_is_created_with_it() -> None:
    world, controller = with_status(mirror_status_seconds=30)
    passing = asyncio.create_task(world.reconcile())
    await until_works(world, 2)  # both works sent; their mirrors wait for the clusters' reports
    await asyncio.sleep(0.05)
    assert not world.hub.applications, "a mirror must wait for its work's status"
    for sequence, cluster in enumerate(("c1", "c2"), start=1):
        record = reported(world, cluster, "Synced", sequence)
        world.maestro.records[record.bundle.id] = record
        controller.observe_record(record)
    assert not controller.batcher.drain(), "a status the propagation is about to write is no patch"
    outcome = await asyncio.wait_for(passing, 5)
    assert outcome.mirrors_applied == 2
    await drain(controller)
    assert sorted(world.hub.writes) == [
        ("create", "apps", "c1-guestbook"),
        ("create", "apps", "c2-guestbook"),
    ]
    for cluster in ("c1", "c2"):
        assert (
            world.hub.applications[("apps", f"{cluster}-guestbook")]["status"]["sync"]["status"] == "Synced"
        )


async def test_a_template_change_writes_each_mirror_with_the_status_of_its_new_spec() -> None:
    world, controller = with_status()
    await world.reconcile()  # no status came: each mirror was written after its wait
    mirror_wait(world, 30)
    for cluster in ("c1", "c2"):
        controller.observe_record(reported(world, cluster, "Synced", 1))
    await drain(controller)
    writes = len(world.hub.writes)

    world.hub.appsets[KEY]["spec"]["template"]["spec"]["source"]["repoURL"] = "https://git.example/new.git"
    passing = asyncio.create_task(world.reconcile())
    await until(lambda: set(world.repos().values()) == {"https://git.example/new.git"})
    old = next(r for r in world.maestro.records.values() if r.bundle.consumer == "c1")
    controller.observe_record(  # a report for the spec before the change does not end the wait
        bundles.BundleRecord(old.bundle, reported(world, "c1", "OutOfSync", 2).status, status_version=1)
    )
    await asyncio.sleep(0.05)
    assert not passing.done() and not controller.batcher.drain()
    for sequence, cluster in enumerate(("c1", "c2"), start=3):
        controller.observe_record(reported(world, cluster, "Synced", sequence))  # at version 2
    await asyncio.wait_for(passing, 5)
    await drain(controller)
    assert sorted(world.hub.writes[writes:]) == [
        ("replace", "apps", "c1-guestbook"),
        ("replace", "apps", "c2-guestbook"),
    ], "one write per mirror: its new spec and status together"
    mirror = world.hub.applications[("apps", "c1-guestbook")]
    assert mirror["spec"]["source"]["repoURL"] == "https://git.example/new.git"
    assert mirror["status"]["sync"]["status"] == "Synced"


async def test_a_mirror_whose_status_does_not_come_is_written_after_the_wait_and_patched_later() -> None:
    world, controller = with_status(mirror_status_seconds=0.05)
    outcome = await asyncio.wait_for(world.reconcile(), 5)
    assert outcome.mirrors_applied == 2 and "status" not in world.hub.applications[("apps", "c1-guestbook")]
    controller.observe_record(reported(world, "c1", "Synced", 1))
    await drain(controller)
    assert world.hub.writes[-1] == ("app-status", "apps", "c1-guestbook")
    assert world.hub.applications[("apps", "c1-guestbook")]["status"]["sync"]["status"] == "Synced"


async def test_a_failed_pass_hands_the_statuses_it_held_back_to_the_status_writer() -> None:
    world, controller = with_status()
    await world.reconcile()  # the mirrors exist
    mirror_wait(world, 30)
    world.hub.appsets[KEY]["spec"]["template"]["spec"]["source"]["repoURL"] = "https://git.example/new.git"

    async def hub_down(*_: Any, **__: Any) -> Any:
        raise ConnectionError("hub unreachable")

    world.hub.replace_application = hub_down  # type: ignore[method-assign]
    passing = asyncio.create_task(world.reconcile())
    await until(lambda: set(world.repos().values()) == {"https://git.example/new.git"})
    controller.observe_record(reported(world, "c1", "Synced", 1))
    assert not controller.batcher.drain()
    with pytest.raises(ExceptionGroup):
        await asyncio.wait_for(passing, 5)
    (patch,) = controller.batcher.drain()
    assert patch.key == ("Application", "apps", "c1-guestbook")
    assert world.controller._in_flight._value == world.controller.settings.targets_in_flight


async def test_works_run_ahead_of_their_mirrors_by_at_most_the_targets_in_flight() -> None:
    world, controller = with_status(mirror_status_seconds=30)
    world.controller._in_flight = asyncio.Semaphore(1)
    passing = asyncio.create_task(world.reconcile())
    await until_works(world, 1)
    for _ in range(100):
        await asyncio.sleep(0)
    assert len(world.maestro.records) == 1, "the second work waits for the first target's mirror"
    (first,) = world.maestro.records.values()
    controller.observe_record(reported(world, first.bundle.consumer, "Synced", 1))
    await until_works(world, 2)  # the first mirror was written: the second work goes
    second = next(r for r in world.maestro.records.values() if r.bundle.id != first.bundle.id)
    controller.observe_record(reported(world, second.bundle.consumer, "Synced", 2))
    assert (await asyncio.wait_for(passing, 5)).mirrors_applied == 2
    assert world.controller._in_flight._value == 1, "every place in flight is given back"


def add_other_appset(world: World) -> None:
    """A second ApplicationSet, ``apps/other``, over the same clusters."""
    other = builders.appset(template={**builders.TEMPLATE, "metadata": {"name": "{{name}}-other"}})
    other["metadata"].update(name="other", uid="0c4d-uid")
    world.hub.appsets[("apps", "other")] = other


async def test_a_pass_writing_its_mirrors_lets_another_send_its_works() -> None:
    world, controller = with_status(mirror_status_seconds=30)
    world.controller.settings = dataclasses.replace(world.controller.settings, concurrency=1)
    world.controller._semaphore = asyncio.Semaphore(1)
    add_other_appset(world)
    first = asyncio.create_task(world.reconcile())
    await until_works(world, 2)  # the first pass waits for its clusters' statuses
    second = asyncio.create_task(world.controller.reconcile("apps", "other"))
    await asyncio.wait_for(until_works(world, 4), 5)  # its works went out meanwhile
    for sequence, record in enumerate(list(world.maestro.records.values()), start=1):
        controller.observe_record(
            bundles.BundleRecord(
                record.bundle, reported(world, "c1", "Synced", sequence).status, status_version=1
            )
        )
    assert all(
        o is not None and o.mirrors_applied == 2
        for o in await asyncio.wait_for(asyncio.gather(first, second), 5)
    )


async def test_application_set_statuses_are_rolled_up_within_a_byte_budget() -> None:
    world, controller = with_status()
    add_other_appset(world)
    await world.reconcile()
    await world.controller.reconcile("apps", "other")
    clock = [0.0]
    budget = batching.TokenBucket(rate=100, burst=100, clock=lambda: clock[0])
    waiting: dict[book.AppSetKey, None] = {}
    controller.rollup_once(waiting, budget)
    (first,) = controller.batcher.drain()  # a status of more than 100 bytes goes out whole,
    assert budget.tokens < 0 and len(waiting) == 1  # and the other waits until it is paid back
    controller.rollup_once(waiting, budget)
    assert not controller.batcher.drain()
    clock[0] += 60.0
    controller.rollup_once(waiting, budget)
    (second,) = controller.batcher.drain()
    assert {first.key, second.key} == {("ApplicationSet", *KEY), ("ApplicationSet", "apps", "other")}
    assert not waiting


async def test_a_hub_name_held_by_another_application_is_not_deployed() -> None:
    world = World()
    foreign = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "c2-guestbook", "namespace": "apps", "labels": {}, "annotations": {}},
        "spec": {"project": "someone-else"},
    }
    world.hub.applications[("apps", "c2-guestbook")] = copy.deepcopy(foreign)
    outcome = await world.reconcile()
    assert any("c2-guestbook already exists and does not belong" in p for p in outcome.problems)
    assert world.hub.applications[("apps", "c2-guestbook")]["spec"] == foreign["spec"]
    live = {r.bundle.consumer: r.bundle.deleting for r in world.maestro.records.values()}
    assert live == {"c1": False, "c2": True}, "the work sent for the taken name is deleted again"

    world.maestro.confirm_deletions()
    again = await world.reconcile()
    assert again.created == 0 and {r.bundle.consumer for r in world.maestro.records.values()} == {"c1"}
    del world.hub.applications[("apps", "c2-guestbook")]  # the name is free again
    await world.reconcile()  # the mirror goes first this time ...
    await world.reconcile()  # ... then the work
    assert sorted(r.bundle.consumer for r in world.maestro.records.values()) == ["c1", "c2"]


async def test_a_mirror_the_hub_refuses_is_a_problem_of_its_target_alone() -> None:
    world = World()
    world.hub.refusals[("apps", "c2-guestbook")] = (
        'Application in version "v1alpha1" cannot be handled as a Application: strict decoding error: '
        'unknown field "spec.source.unknownField"'
    )
    outcome = await world.reconcile()
    (problem,) = outcome.problems
    assert "the hub refused Application apps/c2-guestbook" in problem
    assert 'unknown field "spec.source.unknownField"' in problem
    assert "fix the ApplicationSet's template" in problem
    assert set(world.hub.applications) == {("apps", "c1-guestbook")}
    live = {r.bundle.consumer: r.bundle.deleting for r in world.maestro.records.values()}
    assert live == {"c1": False, "c2": True}, "the refused target's work is deleted again"

    del world.hub.refusals[("apps", "c2-guestbook")]  # the template was fixed
    world.maestro.confirm_deletions()
    await world.reconcile()
    await world.reconcile()
    assert sorted(r.bundle.consumer for r in world.maestro.records.values()) == ["c1", "c2"]
    assert set(world.hub.applications) == {("apps", "c1-guestbook"), ("apps", "c2-guestbook")}


async def test_a_deleted_work_forgets_its_application() -> None:
    world, controller = with_status()
    await world.reconcile()
    record = reported(world, "c1", "Synced", 3)
    controller.observe_record(record)
    meta = record.bundle.metadata
    controller._observe(str(record.bundle.id), "c1", meta, None, 4, 1, deleted=True)
    assert world.book.app_status(KEY, "c1-guestbook") is None
    assert not controller.batcher.drain()
    controller._observe(str(uuid.uuid4()), "c1", {"annotations": {}}, None, 1, 1, deleted=False)  # not ours


def synced(world: World, cluster: str, **values: Any) -> None:
    """The cluster reports its Application Synced and Healthy at the work's latest version."""
    rid, record = next((k, r) for k, r in world.maestro.records.items() if r.bundle.consumer == cluster)
    feedback = {"syncStatus": "Synced", "healthStatus": "Healthy", **values}
    report = builders.bundle_status(builders.feedback(**feedback))
    world.maestro.records[rid] = bundles.BundleRecord(
        record.bundle,
        bundles.BundleStatus(report["conditions"], report["resourceStatus"], sequence_id=1),
        status_version=record.bundle.version,
    )


def worker_app(world: World, cluster: str) -> dict[str, Any]:
    record = next(r for r in world.maestro.records.values() if r.bundle.consumer == cluster)
    manifest: dict[str, Any] = record.bundle.manifests[0]
    return manifest


async def test_rolling_sync_delivers_everything_and_syncs_step_by_step() -> None:
    world = World()
    world.hub.secrets = [
        builders.cluster_secret("c1", labels={"env": "dev"}),
        builders.cluster_secret("c2", labels={"env": "prod"}),
    ]
    world.hub.appsets[KEY]["spec"]["strategy"] = {
        "type": "RollingSync",
        "rollingSync": {
            "steps": [
                {"matchExpressions": [{"key": "env", "operator": "In", "values": [env]}]}
                for env in ("dev", "prod")
            ]
        },
    }
    first = await world.reconcile()
    assert first.rolling and first.created == 2, "every Application is delivered"
    for cluster in ("c1", "c2"):
        app = worker_app(world, cluster)
        assert app["spec"]["syncPolicy"]["automated"] == {"prune": True, "selfHeal": True, "enabled": False}
        assert "operation" not in app
    mirror = world.hub.applications[("apps", "c2-guestbook")]
    assert mirror["spec"]["syncPolicy"]["automated"]["enabled"] is False

    second = await world.reconcile()
    assert second.updated == 1, "step 1's Application is asked to sync"
    operation = worker_app(world, "c1")["operation"]
    assert operation["initiatedBy"] == {"username": "applicationset-controller", "automated": True}
    assert operation["sync"] == {"prune": True}
    assert "operation" not in worker_app(world, "c2")
    assert "operation" not in world.hub.applications[("apps", "c1-guestbook")], "the mirror has none"
    facts = world.book.facts(KEY)
    assert facts is not None and facts.rollout_progressing and facts.rollout_step == 1
    assert {a.name: (a.rollout or {}).get("status") for a in facts.apps} == {
        "c1-guestbook": "Pending",
        "c2-guestbook": "Waiting",
    }

    assert (await world.reconcile()).updated == 0, "the sync has not started: nothing to send"
    synced(world, "c1", operationPhase="Succeeded", operationStartedAt="2999-01-01T00:00:00Z")
    await world.reconcile()  # Progressing
    assert (await world.reconcile()).updated == 1, "step 1 is Healthy: step 2 is asked to sync"
    assert "operation" in worker_app(world, "c2")
    facts = world.book.facts(KEY)
    assert facts is not None and facts.rollout_step == 2
    assert {a.name: (a.rollout or {}).get("status") for a in facts.apps} == {
        "c1-guestbook": "Healthy",
        "c2-guestbook": "Pending",
    }


async def test_the_daemon_passes_when_woken_and_exits_when_stopped() -> None:
    world = World()
    events: list[tuple[str, str]] = []
    stop = asyncio.Event()
    task = asyncio.create_task(
        world.controller.run_daemon(*KEY, lambda kind, reason, _: events.append((kind, reason)), stop)
    )
    await soon(lambda: len(world.maestro.records) == 2 and bool(events))
    assert events == [("Normal", "Propagated")]
    world.hub.appsets[KEY]["spec"]["generators"] = [{"git": {}}]
    world.controller.appset_seen("MODIFIED", {"metadata": {"namespace": "apps", "name": "guestbook"}})
    world.controller.appset_seen(
        "MODIFIED", {"metadata": {"namespace": "apps", "name": "guestbook", "generation": 2}}
    )
    await soon(lambda: len(events) == 2)
    assert events[1] == ("Warning", "GenerationFailed")
    stop.set()
    world.controller.wake(*KEY)
    await asyncio.wait_for(task, 30)


def test_a_pass_failing_again_and_again_is_retried_less_often_up_to_four_times_the_pause() -> None:
    settings = PropagationSettings(retry_seconds=5.0, resync_seconds=60.0)
    delays = [propagation.retry_delay(settings, failures) for failures in range(1, 7)]
    for delay, ceiling in zip(delays, (5, 10, 20, 20, 20, 20), strict=True):
        assert ceiling * 0.9 <= delay <= ceiling
    assert propagation.retry_delay(PropagationSettings(retry_seconds=5.0, resync_seconds=8.0), 3) <= 8.0
