"""The Grafana dashboard the hub chart ships (charts/fleetplane-hub/dashboards/fleetplane.json)
asks only for metrics the processes export, and shows every metric they export.

The names come from the processes' own registries, built as each process builds them (the Maestro
server's, an agent's with its sources attached, the hub controllers', the provisioner's); a
metric renamed, dropped or added without its panel fails here. Every query names at least one
metric, every panel reads the dashboard's Prometheus data source, and no two panels overlap.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from controllers.metrics import ControllerMetrics
from maestro.agent.agent_loop import AgentStats
from maestro.agent.metrics import AgentMetrics, Sources
from maestro.server.metrics import ServerMetrics
from provisioner.metrics import ProvisionerMetrics

DASHBOARD = (
    Path(__file__).resolve().parents[2] / "charts" / "fleetplane-hub" / "dashboards" / "fleetplane.json"
)
# The series a family of each type exposes, besides the samples it holds now (a labelled metric
# with no child yet holds none).
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
}
# Words of PromQL that are no metric: set operators, modifiers and the like (functions and
# aggregations are told by the parenthesis that follows them).
KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "group_left", "group_right", "inf", "nan"})
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_WORD = re.compile(r"(?<![\w:.$])[A-Za-z_:][\w:]*")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects."""
    text = _GROUPING.sub(" ", _RANGE.sub(" ", _MATCHERS.sub(" ", _STRING.sub('""', expr))))
    found = set()
    for word in _WORD.finditer(text):
        if text[word.end() :].lstrip().startswith("(") or word.group() in KEYWORDS:
            continue
        found.add(word.group())
    return found


def registries() -> dict[str, CollectorRegistry]:
    server = ServerMetrics()
    server.watch_ingest(lambda: 0)
    agent = AgentMetrics()
    agent.attach(
        Sources(
            stats=AgentStats(),
            held=lambda: 0,
            consumer_restarts=lambda: 0,
            renewals=lambda: 0,
            lag=lambda: 0,
            not_after=lambda: 0.0,
        )
    )
    return {
        "the Maestro server": server.registry,
        "an agent": agent.registry,
        "the hub controllers": ControllerMetrics().registry,
        "the provisioner": ProvisionerMetrics().registry,
    }


def exported() -> dict[str, set[str]]:
    """Each metric family's name, with the names of the series it exposes."""
    families: dict[str, set[str]] = {}
    for registry in registries().values():
        for family in registry.collect():
            series = {family.name + suffix for suffix in SUFFIXES[family.type]}
            families[family.name] = series | {sample.name for sample in family.samples}
    return families


def queries() -> list[tuple[str, str]]:
    """(panel title, expression) of every query of the dashboard."""
    dashboard = json.loads(DASHBOARD.read_text())
    return [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p.get("targets", ())]


def test_the_extractor_finds_metrics_and_nothing_else() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, kind) (rate(a_seconds_bucket{m!~"x{1}|y"}[$__rate_interval])))'
        " / ignoring(kind) group_left b_total offset 5m > bool 0 and on (job) c"
    )
    assert metric_names(expr) == {"a_seconds_bucket", "b_total", "c"}


def test_every_query_names_only_metrics_the_processes_export() -> None:
    series = set().union(*exported().values())
    found = queries()
    assert found
    for title, expr in found:
        names = metric_names(expr)
        assert names, f"{title}: no metric in {expr}"
        assert names <= series, f"{title}: {sorted(names - series)} exported by no process ({expr})"


def test_every_metric_the_processes_export_has_a_panel() -> None:
    used = set().union(*(metric_names(expr) for _, expr in queries()))
    missing = sorted(family for family, series in exported().items() if not series & used)
    assert not missing, f"no panel shows {missing}"


def _overlap(a: dict[str, int], b: dict[str, int]) -> bool:
    return (
        a["x"] < b["x"] + b["w"]
        and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"]
        and b["y"] < a["y"] + a["h"]
    )


def test_the_panels_read_the_chosen_data_source_and_do_not_overlap() -> None:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource"]
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        for target in panel.get("targets", ()):
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
    for i, a in enumerate(panels):
        for b in panels[i + 1 :]:
            assert not _overlap(a["gridPos"], b["gridPos"]), (a["title"], b["title"])
