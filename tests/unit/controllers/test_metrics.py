"""The hub controllers' Prometheus metrics (``controllers.metrics``) as a scraper reads them, after
passes against the in-memory hub and Maestro of ``test_handlers``.

Cases: a daemon's passes are counted by outcome (changed, unchanged, problems) and timed, the
ApplicationSets served are a gauge; works published by operation, mirrors written; a deletion
counts its steps (deleting, then deleted) and the works it deleted; statuses received and written
by kind and outcome, the writes pending; no label value names an ApplicationSet, a cluster or an
Application.
"""

from __future__ import annotations

import asyncio

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from controllers.metrics import ControllerMetrics
from tests.unit.controllers.test_handlers import KEY, World, drain, reported, with_status

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(metrics: ControllerMetrics) -> Samples:
    text = generate_latest(metrics.registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def reconciles(samples: Samples, outcome: str) -> float:
    return samples.get(
        ("fleetplane_controllers_reconciles_total", (("kind", "ApplicationSet"), ("outcome", outcome))), 0
    )


async def eventually(done: object) -> None:
    for _ in range(200):
        if callable(done) and done():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not reached")


async def test_passes_works_mirrors_and_deletions_are_counted() -> None:
    world = World()
    metrics = world.controller.metrics
    stop = asyncio.Event()
    task = asyncio.create_task(world.controller.run_daemon(*KEY, lambda *_: None, stop))
    await eventually(lambda: reconciles(scrape(metrics), "changed") == 1)
    assert scrape(metrics)[("fleetplane_controllers_application_sets", ())] == 1
    world.controller.wake(*KEY)
    await eventually(lambda: reconciles(scrape(metrics), "unchanged") == 1)
    world.hub.appsets[KEY]["spec"]["generators"] = [{"git": {}}]
    world.controller.wake(*KEY)
    await eventually(lambda: reconciles(scrape(metrics), "problems") == 1)
    stop.set()
    world.controller.wake(*KEY)
    await asyncio.wait_for(task, 2)

    samples = scrape(metrics)
    assert samples[("fleetplane_controllers_application_sets", ())] == 0
    assert samples[("fleetplane_controllers_works_published_total", (("operation", "create"),))] == 2
    assert samples[("fleetplane_controllers_mirror_writes_total", (("operation", "create"),))] == 2
    timed = ("fleetplane_controllers_reconcile_seconds_count", (("kind", "ApplicationSet"),))
    assert samples[timed] == 3

    spec = world.hub.appsets[KEY]["spec"]
    assert await world.controller.finalize(*KEY, spec) == 2
    world.maestro.confirm_deletions()
    assert await world.controller.finalize(*KEY, spec) == 0
    samples = scrape(metrics)
    assert (reconciles(samples, "deleting"), reconciles(samples, "deleted")) == (1, 1)
    assert samples[("fleetplane_controllers_works_deleted_total", ())] == 2
    assert samples[("fleetplane_controllers_mirror_writes_total", (("operation", "delete"),))] == 2
    values = {value for _, labels in samples for _, value in labels}
    assert not {value for value in values if "guestbook" in value or value in ("c1", "c2", "apps")}


async def test_statuses_received_and_written_are_counted() -> None:
    world, controller = with_status()
    await world.reconcile()
    controller.observe_record(reported(world, "c1", "Synced", 5))
    controller.observe_record(reported(world, "c2", "Synced", 5))
    samples = scrape(controller.metrics)
    assert samples[("fleetplane_controllers_status_updates_total", ())] == 2
    assert samples[("fleetplane_controllers_status_writes_pending", ())] == 2
    await drain(controller)
    samples = scrape(controller.metrics)
    written = (("kind", "Application"), ("outcome", "written"))
    assert samples[("fleetplane_controllers_status_writes_total", written)] == 2
    assert samples[("fleetplane_controllers_status_writes_pending", ())] == 0
