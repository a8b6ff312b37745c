"""The fleetplane-hub chart's copies of the code base's CRDs and worker-cluster definition are
current (``charts/render_crds.py`` writes them), and both charts share one library of templates."""

from __future__ import annotations

import runpy
from pathlib import Path

import yaml

CHARTS = Path(__file__).resolve().parents[2] / "charts"
RENDER = runpy.run_path(str(CHARTS / "render_crds.py"))


def test_the_chart_copies_are_current() -> None:
    assert RENDER["stale"]() == [], "run: python charts/render_crds.py"
    assert RENDER["main"](["--check"]) == 0


def test_the_chart_crds_are_the_platform_crds() -> None:
    text = (CHARTS / "fleetplane-hub" / "crds" / "platform-crds.yaml").read_text()
    names = [doc["metadata"]["name"] for doc in yaml.safe_load_all(text) if doc]
    assert names == [
        "compositeresourcedefinitions.fleetplane.io",
        "compositions.fleetplane.io",
        "compositionrevisions.fleetplane.io",
    ]


def test_both_charts_use_the_shared_library() -> None:
    for chart in ("fleetplane-hub", "fleetplane-agent"):
        link = CHARTS / chart / "charts" / "fleetplane-common"
        assert link.is_symlink() and link.resolve() == (CHARTS / "fleetplane-common").resolve()
