"""``--report DIR``: a benchmark's figures and timelines in one JSON file, and each timeline's charts.

``<name>.json`` holds the command, the figures it printed, every timeline (one per run: a
``--compare`` has several) and the names of the charts beside it, ``<label>-throughput.png`` and
``<label>-latency.png`` per timeline. A run measured as curves (``write_curves``) has
``<name>-<panel>.png`` per panel of curves instead, and the curves in its JSON file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from benchmarks import charts
from benchmarks.timeline import Timeline


def write(
    folder: Path, name: str, command: str, figures: Mapping[str, Any], timelines: Mapping[str, Timeline]
) -> Path:
    """Write the report and its charts into ``folder`` (made if missing); the JSON file's path."""
    folder.mkdir(parents=True, exist_ok=True)
    drawn: list[Path] = []
    for label, timeline in timelines.items():
        title = command if len(timelines) == 1 else f"{command} [{label}]"
        drawn += charts.draw(timeline, folder, label, title)
    report = {
        "command": command,
        "figures": figures,
        "timelines": {label: timeline.as_dict() for label, timeline in timelines.items()},
        "charts": [path.name for path in drawn],
    }
    path = folder / f"{name}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path


def write_curves(
    folder: Path,
    name: str,
    command: str,
    figures: Mapping[str, Any],
    panels: Mapping[str, tuple[str, Mapping[str, Sequence[tuple[float, float]]]]],
) -> Path:
    """Write the report and a chart per panel (panel -> its y axis' label and its curves) into
    ``folder`` (made if missing); the JSON file's path."""
    folder.mkdir(parents=True, exist_ok=True)
    drawn = [
        charts.draw_curves(curves, folder / f"{name}-{panel}.png", f"{command}: {panel}", ylabel)
        for panel, (ylabel, curves) in panels.items()
    ]
    report = {
        "command": command,
        "figures": figures,
        "curves": {panel: curves for panel, (_, curves) in panels.items()},
        "charts": [path.name for path in drawn],
    }
    path = folder / f"{name}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    return path
