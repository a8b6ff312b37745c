"""The fleet benchmark's timeline: each hub mirror's trip, and each phase's rates from the samples.

Cases: a new mirror's latency runs from its creation to its first Synced/Healthy; after a template
change, from the spec's new revision to Synced/Healthy at a status revision other than the one it
had (a Synced/Healthy at the old revision is not done); each trip is counted once; a deleted mirror
is forgotten. The timeline's rates are each phase's counts between its samples, from the last one
before it, in seconds from the run's start; its phases are marked where they began.
"""

from __future__ import annotations

from typing import Any

from benchmarks.fleet import report
from benchmarks.fleet.sampler import MirrorLatency, Sample, summarize
from benchmarks.timeline import RatePoint


def _mirror(revision: str, *, synced: bool = False, status_revision: str = "") -> dict[str, Any]:
    status = {"sync": {"status": "Synced", "revision": status_revision}, "health": {"status": "Healthy"}}
    return {"spec": {"source": {"targetRevision": revision}}, "status": status if synced else {}}


def _see(latency: MirrorLatency, app: dict[str, Any], at: float) -> None:
    latency.seen("argocd/a", app, summarize(app), at)


def test_a_mirror_trip_runs_from_what_it_asks_to_its_status_saying_so() -> None:
    latency = MirrorLatency()
    _see(latency, _mirror("HEAD"), 10.0)
    _see(latency, _mirror("HEAD", synced=True, status_revision="r1"), 12.5)
    _see(latency, _mirror("HEAD", synced=True, status_revision="r1"), 13.0)  # counted once
    _see(latency, _mirror("v2", synced=True, status_revision="r1"), 20.0)  # the template changed
    _see(latency, _mirror("v2", synced=True, status_revision="r1"), 21.0)  # not there yet
    _see(latency, _mirror("v2", synced=True, status_revision="r2"), 23.0)
    assert latency.finished == [(12.5, 2.5), (23.0, 3.0)]

    latency.gone("argocd/a")
    _see(latency, _mirror("v2", synced=True, status_revision="r2"), 30.0)  # created again, done at once
    assert latency.finished[-1] == (30.0, 0.0)


def test_the_timeline_holds_each_phase_rates_from_its_own_samples() -> None:
    samples = [
        Sample(works=4, apps=2, ready=0, at=101.0, phase="create"),
        Sample(works=4, apps=4, ready=3, at=102.0, phase="create"),
        Sample(works=4, works_new=2, apps=4, ready=4, moved=1, at=104.0, phase="update"),
        Sample(works=4, works_new=4, apps=4, ready=4, moved=4, at=105.0, phase="update"),
        Sample(works=1, apps=2, ready=2, at=107.0, phase="delete"),
        Sample(works=0, apps=0, at=108.0, phase="delete"),
    ]
    phases = {"create": 100.5, "update": 103.0, "delete": 106.0}
    timeline = report.timeline(samples, phases, [(102.0, 1.5)], start=100.0)

    assert timeline.phases == {"create": 0.5, "update": 3.0, "delete": 6.0}
    assert timeline.rates == {
        "create: Applications Synced/Healthy": [RatePoint(2.0, 3.0)],
        # from the last sample of the phase before
        "update: works applied at the new template": [RatePoint(4.0, 1.0), RatePoint(5.0, 2.0)],
        "update: Applications at the new revision": [RatePoint(4.0, 0.5), RatePoint(5.0, 3.0)],
        "delete: works removed": [RatePoint(7.0, 1.5), RatePoint(8.0, 1.0)],
        "delete: Applications removed": [RatePoint(7.0, 1.0), RatePoint(8.0, 2.0)],
    }
    (point,) = timeline.latencies["hub mirror written -> Synced/Healthy"]
    assert (point.second, point.count, point.p50_ms) == (2.0, 1, 1500.0)
