"""What ``fleetplane bench soak`` computes from its samples, and how it reads them.

Cases: a trend is the least-squares line over the last two thirds of a curve (the warm-up left
out), with its slope per minute and its growth across that window in percent; a flat curve grows
0%, a steady rise by its share, and a curve too short or all at one instant has none; the summary
gives each curve's first, last and highest value with its trend; the server's metrics are read
from Prometheus' text format, labels summed; a process tree's memory, descriptors and TCP
connections are read from /proc (this process: a socket connected to a listener counts once, the
listener not at all), and a component another started is counted apart from it; the load keeps
the live works within their band; a soak's report holds its figures, its curves and a chart per
panel.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from benchmarks import proc_sample, reports, soak, soak_trends
from tests.unit.benchmarks.test_reports import assert_png


def test_a_trend_leaves_the_warm_up_out() -> None:
    # a climb in the first third (warm-up), then flat
    points = [(float(t), 100.0 + (50.0 if t >= 20 else 2.5 * t)) for t in range(0, 61, 2)]
    flat = soak_trends.trend(points)
    assert flat is not None
    assert flat.slope_per_min == 0 and flat.growth_pct == 0
    assert flat.samples == len([t for t, _ in points if t >= 20])


def test_a_steady_rise_grows_by_its_share_of_the_window() -> None:
    # 1 MB a minute from 100 MB over 30 minutes: the window is minutes 10 to 30, 110 -> 130 MB
    points = [(60.0 * m, 100.0 + m) for m in range(31)]
    rising = soak_trends.trend(points)
    assert rising is not None
    assert rising.slope_per_min == pytest.approx(1.0)
    assert (rising.fitted_start, rising.fitted_end) == pytest.approx((110.0, 130.0))
    assert rising.growth_pct == pytest.approx(100 * 20 / 110, abs=0.01)


@pytest.mark.parametrize(
    "points",
    [[], [(0.0, 5.0)], [(3.0, 1.0), (3.0, 2.0)]],
    ids=["empty", "one", "one-instant"],
)
def test_no_trend_without_two_instants(points: list[tuple[float, float]]) -> None:
    assert soak_trends.trend(points) is None


def test_a_curve_from_zero_has_a_slope_but_no_growth() -> None:
    zero_start = soak_trends.trend([(0.0, 0.0), (60.0, 0.0), (120.0, 0.0), (180.0, 6.0)])
    assert zero_start is not None and zero_start.slope_per_min > 0
    fitted = soak_trends.trend([(0.0, 0.0), (30.0, 0.0), (60.0, 0.0)])
    assert fitted is not None and fitted.growth_pct is None


def test_the_summary_names_each_curves_ends_peak_and_trend() -> None:
    about = soak_trends.summary(
        {"server": [(0.0, 10.0), (30.0, 14.0), (60.0, 12.0), (90.0, 12.0)], "never sampled": []}
    )
    assert list(about) == ["server"]
    server = about["server"]
    assert (server["first"], server["last"], server["max"]) == (10.0, 12.0, 14.0)
    assert server["trend"]["samples"] == 3 and server["trend"]["slope_per_min"] == pytest.approx(-2.0)


def test_metrics_are_read_with_their_labels_summed() -> None:
    text = "\n".join(
        [
            "# HELP maestro_outbox_events Spec events stored and not yet relayed to Kafka.",
            "# TYPE maestro_outbox_events gauge",
            "maestro_outbox_events 7.0",
            'maestro_works{state="pending"} 3.0',
            'maestro_works{state="reported"} 40.0',
            "maestro_status_ingest_lag_messages 0.0",
            "not a sample",
        ]
    )
    assert soak.parse_metrics(text) == {
        "maestro_outbox_events": 7.0,
        "maestro_works": 43.0,
        "maestro_status_ingest_lag_messages": 0.0,
    }


def test_a_process_trees_descriptors_and_connections_are_counted() -> None:
    before = proc_sample.usage(os.getpid(), proc_sample.tcp_sockets())
    with (
        socket.create_server(("127.0.0.1", 0)) as listener,
        socket.create_connection(listener.getsockname()) as client,
    ):
        accepted, _ = listener.accept()
        with accepted:
            during = proc_sample.usage(os.getpid(), proc_sample.tcp_sockets())
    assert before.pss_mb > 0 and before.processes >= 1
    # the listener, the client and the accepted socket are three descriptors; the two connected
    # ones are two TCP connections, the listener none
    assert during.fds - before.fds == 3
    assert during.tcp - before.tcp == 2
    assert client.fileno() == -1  # closed with its block


def test_a_component_started_by_another_is_counted_apart() -> None:
    tcp = proc_sample.tcp_sockets()
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as child:
        try:
            whole = proc_sample.usage(os.getpid(), tcp)
            alone = proc_sample.usage(os.getpid(), tcp, apart=frozenset({os.getpid(), child.pid}))
            started = proc_sample.usage(child.pid, tcp, apart=frozenset({os.getpid(), child.pid}))
        finally:
            child.kill()
    assert whole.processes == alone.processes + 1 and started.processes == 1
    assert whole.pss_mb > alone.pss_mb


def test_the_load_keeps_the_live_works_in_their_band() -> None:
    load = soak._Load(client=None, agents={}, target=100, rng=random.Random(1))  # type: ignore[arg-type]
    load.live = {uuid.uuid4(): soak._Work("c", i) for i in range(85)}
    assert {load.choose() for _ in range(50)} == {"create"}
    load.live = {uuid.uuid4(): soak._Work("c", i) for i in range(115)}
    assert {load.choose() for _ in range(50)} == {"delete"}
    load.live = {uuid.uuid4(): soak._Work("c", i) for i in range(100)}
    assert {load.choose() for _ in range(500)} == set(soak.MIX)


def test_a_soak_report_holds_its_curves_and_a_chart_per_panel(tmp_path: Path) -> None:
    memory = {"server": [(0.0, 100.0), (30.0, 101.0)], "kafka": [(0.0, 400.0), (30.0, 399.0)]}
    panels: dict[str, tuple[str, Any]] = {"memory": ("resident MB", memory), "backlog": ("events", {})}
    figures = {"minutes": 1.0}
    written = reports.write_curves(tmp_path, "soak", "fleetplane bench soak --minutes 1", figures, panels)
    report = json.loads(written.read_text())
    assert report["figures"] == figures
    assert report["curves"]["memory"]["server"] == [[0.0, 100.0], [30.0, 101.0]]
    assert report["charts"] == ["soak-memory.png", "soak-backlog.png"]
    for chart in report["charts"]:
        assert_png(tmp_path / chart)
