"""What ``fleetplane local up`` and ``status`` show of an environment: its endpoints and processes."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from fleetplane import output
from fleetplane.output import Column
from localinfra import fleet
from localinfra.environment import Environment

ENDPOINT_COLUMNS = (Column.key("component", "component"), Column.key("where", "where"))
PROCESS_COLUMNS = (
    Column.key("process", "name"),
    Column.key("pid", "pid"),
    Column("state", lambda row: "running" if row["alive"] else "dead"),
    Column.key("log", "log"),
    Column("command", lambda row: " ".join(row["argv"]), wide=True),
)


def show(environment: Environment, fmt: output.Format, *, processes: bool) -> int:
    """Print the endpoints (and the processes); return how many processes are dead."""
    endpoints = [
        {"component": name, "where": values} for name, values in sorted(environment.endpoints.items())
    ]
    rows = fleet.status(environment) if processes else []
    data: dict[str, Any] = {"environment": str(environment.root), "endpoints": endpoints}
    if processes:
        data["processes"] = rows

    def text(wide: bool) -> str:
        tables = [output.table(endpoints, ENDPOINT_COLUMNS, wide=wide)]
        if processes:
            tables.append(output.table(rows, PROCESS_COLUMNS, wide=wide))
        return "\n\n".join(tables)

    if not fmt.is_data:
        Console(stderr=True).print(f"fleetplane local environment {environment.root}")
    output.show_data(data, fmt, text)
    return sum(not row["alive"] for row in rows)
