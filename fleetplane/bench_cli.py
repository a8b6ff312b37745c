"""``fleetplane bench``: benchmarks that print figures (never pass/fail on time)."""

from __future__ import annotations

import asyncio
import json

import typer
from rich.console import Console
from rich.table import Table

from maestro.bench import pipeline as pipeline_bench

app = typer.Typer(
    help="Benchmarks that start what they need and print what they measure.", no_args_is_help=True
)
err = Console(stderr=True)


@app.command()
def pipeline(
    clusters: int = typer.Option(10, min=1, help="Simulated clusters (agents)."),
    works_per_cluster: int = typer.Option(600, min=1, help="Works (bundles) created per cluster."),
    concurrency: int = typer.Option(128, min=1, help="Creates in flight at once."),
    paced_rate: float = typer.Option(100.0, help="Creates/s of the paced latency phase."),
    paced_seconds: float = typer.Option(10.0, help="Length of the paced phase."),
    fast_db: bool = typer.Option(False, help="PostgreSQL without fsync (faster, not durable)."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """Drive the Maestro pipeline with simulated agents over real PostgreSQL and Kafka."""
    result = asyncio.run(
        pipeline_bench.run(
            clusters,
            works_per_cluster,
            concurrency=concurrency,
            paced_rate=paced_rate,
            paced_seconds=paced_seconds,
            durable=not fast_db,
            report=lambda line: err.print(line, highlight=False),
        )
    )
    if as_json:
        print(json.dumps(result.as_dict(), indent=2))
        return
    table = Table(
        title=f"fleetplane bench pipeline --clusters {clusters} --works-per-cluster {works_per_cluster}"
    )
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in result.as_dict().items():
        table.add_row(key, f"{value:,.1f}" if isinstance(value, float) else str(value))
    Console().print(table)
