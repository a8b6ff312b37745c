"""``--report DIR``: the figures and timelines as JSON, and two PNG charts per timeline.

Cases: the JSON holds the command, the figures as given, each timeline and the charts' names; each
chart is a PNG of some substance; a timeline that recorded nothing still gets its charts (saying
so); matplotlib is not loaded by importing the benchmarks or the report writer, only by drawing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks import reports
from benchmarks.timeline import LatencyPoint, RatePoint, Timeline

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _timeline() -> Timeline:
    return Timeline(
        phases={"bulk": 0.0, "paced": 3.0},
        rates={"applied": [RatePoint(float(s), 100.0 + 10 * s) for s in range(6)]},
        latencies={"create -> applied": [LatencyPoint(float(s), 10, 20.0 + s, 80.0 + s) for s in range(6)]},
    )


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC), path
    assert len(data) > 5_000, (path, len(data))


def test_a_report_holds_the_figures_the_timelines_and_their_charts(tmp_path: Path) -> None:
    figures = {"total": 120, "creates_per_s": 812.5, "notes": []}
    written = reports.write(
        tmp_path / "out", "pipeline", "fleetplane bench pipeline", figures, {"pipeline": _timeline()}
    )

    report = json.loads(written.read_text())
    assert written == tmp_path / "out" / "pipeline.json"
    assert report["command"] == "fleetplane bench pipeline" and report["figures"] == figures
    timeline = report["timelines"]["pipeline"]
    assert timeline["phases"] == {"bulk": 0.0, "paced": 3.0}
    assert timeline["rates"]["applied"][1] == {"second": 1.0, "per_s": 110.0}
    assert timeline["latencies"]["create -> applied"][0]["p99_ms"] == 80.0
    assert report["charts"] == ["pipeline-throughput.png", "pipeline-latency.png"]
    for name in report["charts"]:
        assert_png(tmp_path / "out" / name)


def test_a_timeline_that_recorded_nothing_still_gets_its_charts(tmp_path: Path) -> None:
    written = reports.write(
        tmp_path, "fleet", "fleetplane bench fleet", {}, {"a": Timeline(), "b": Timeline()}
    )
    assert json.loads(written.read_text())["charts"] == [
        "a-throughput.png",
        "a-latency.png",
        "b-throughput.png",
        "b-latency.png",
    ]
    for png in tmp_path.glob("*.png"):
        assert png.read_bytes().startswith(PNG_MAGIC)


def test_matplotlib_is_loaded_only_to_draw() -> None:
    code = "import sys, fleetplane.bench_cli, benchmarks.reports; print('matplotlib' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "False"
