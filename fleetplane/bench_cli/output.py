"""How ``fleetplane bench`` shows figures: JSON, tables titled with their command, reports."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.timeline import Timeline
from fleetplane.bench_cli.typer_app import err


def write_report(
    folder: Path, name: str, title: str, figures: dict[str, Any], timelines: Mapping[str, Timeline]
) -> None:
    from benchmarks import reports

    written(reports.write(folder, name, title, figures, timelines))


def written(report: Path) -> None:
    err.print(f"[bench] report written to {report}", highlight=False, markup=False, soft_wrap=True)


def output(
    figures: dict[str, Any],
    title: str,
    *,
    as_json: bool,
    flat: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> None:
    """The figures as JSON on stdout, or as a table titled with the command that made them."""
    if as_json:
        print(json.dumps(figures, indent=2))
    else:
        print_table(title, flat(figures) if flat else figures)


def print_table(title: str, figures: dict[str, Any]) -> None:
    table = Table(title=title)
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        if isinstance(value, float):
            shown = f"{value:,.1f}"
        elif isinstance(value, dict) and all(isinstance(v, dict) for v in value.values()):
            shown = "\n".join(f"{k}: {pairs(v)}" for k, v in value.items())
        elif isinstance(value, dict):
            shown = pairs(value)
        elif isinstance(value, list):
            shown = "\n".join(value)
        else:
            shown = "-" if value is None else str(value)
        table.add_row(key, shown)
    Console().print(table)


def print_rows(title: str, key: str, rows: Mapping[str, Mapping[str, Any]]) -> None:
    """One row per entry of ``rows``, a column per figure (every row's, in the order first seen;
    "-" where a row has none)."""
    table = Table(title=title)
    columns = list(dict.fromkeys(c for row in rows.values() for c in row))
    for column in [key, *columns]:
        table.add_column(column)
    for name, row in rows.items():
        table.add_row(name, *("-" if row.get(c) is None else str(row.get(c)) for c in columns))
    Console().print(table)


def pairs(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())
