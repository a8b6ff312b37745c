"""``fleetplane bench``: benchmarks that print figures (never pass/fail on time)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from fleetplane import gc_tuning
from maestro.bench import pipeline as pipeline_bench

app = typer.Typer(
    help="Benchmarks that start what they need and print what they measure.", no_args_is_help=True
)
err = Console(stderr=True)


@app.callback()
def _stop_cleanly() -> None:
    # A benchmark stopped with SIGTERM (kill, a CI timeout) unwinds as on Ctrl-C: the processes it
    # started are stopped and its temporary environment removed, instead of left running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


@app.command()
def pipeline(
    clusters: int = typer.Option(10, min=1, help="Simulated clusters (agents)."),
    works_per_cluster: int = typer.Option(600, min=1, help="Works (bundles) created per cluster."),
    concurrency: int = typer.Option(128, min=1, help="Creates in flight at once."),
    paced_rate: float = typer.Option(100.0, help="Creates/s of the paced latency phase."),
    paced_seconds: float = typer.Option(10.0, help="Length of the paced phase."),
    fast_db: bool = typer.Option(False, help="PostgreSQL without fsync (faster, not durable)."),
    server_replicas: int = typer.Option(
        1, min=1, help="Maestro server processes sharing PostgreSQL and Kafka; creates alternate over them."
    ),
    batch_publish: bool = typer.Option(
        False,
        "--batch-publish/--single-publish",
        help="Send creates with fleetplane's PublishBatch (as the hub controllers do) instead of one "
        "upstream-compatible Publish call each.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """Drive the Maestro pipeline with simulated agents over real PostgreSQL and Kafka."""
    gc_tuning.tune()  # as in the agents it simulates
    result = asyncio.run(
        pipeline_bench.run(
            clusters,
            works_per_cluster,
            concurrency=concurrency,
            paced_rate=paced_rate,
            paced_seconds=paced_seconds,
            durable=not fast_db,
            replicas=server_replicas,
            batch_publish=batch_publish,
            report=_progress,
        )
    )
    _output(
        result.as_dict(),
        f"fleetplane bench pipeline --clusters {clusters} --works-per-cluster {works_per_cluster}",
        as_json=as_json,
    )


@app.command()
def fleet(
    clusters: int = typer.Option(20, min=1, help="Simulated clusters (agents and inventory Secrets)."),
    apps_per_cluster: int = typer.Option(5, min=1, help="ApplicationSets, each targeting every cluster."),
    argocd_sync_delay: float = typer.Option(1.0, help="Seconds the simulated Argo CD takes to sync."),
    refresh: float = typer.Option(
        60.0, help="Seconds between the simulated agents' full status re-reads (changes are signalled)."
    ),
    phase_timeout: float = typer.Option(1800.0, help="Longest wait of each phase (create, update, delete)."),
    write_rate: float = typer.Option(200.0, help="The controllers' hub status writes per second."),
    write_concurrency: int = typer.Option(
        16, min=1, help="The controllers' hub status writes in flight at once."
    ),
    phases: str = typer.Option(
        "create,update,delete", help="Phases to time, comma-separated; create always runs."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """The hub controllers end to end: ApplicationSets -> Maestro -> simulated agents -> hub status."""
    from fleetplane import bench_fleet

    gc_tuning.tune()  # as in the agents it simulates (after the import: what it loaded is frozen too)
    try:
        chosen = bench_fleet.parse_phases(phases)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--phases") from None

    result = asyncio.run(
        bench_fleet.run(
            clusters,
            apps_per_cluster,
            argocd_sync_delay=argocd_sync_delay,
            refresh_seconds=refresh,
            phase_timeout=phase_timeout,
            writes=bench_fleet.StatusWrites(write_rate, write_concurrency),
            phases=chosen,
            report=_progress,
        )
    )
    _output(
        result.as_dict(),
        f"fleetplane bench fleet --clusters {clusters} --apps-per-cluster {apps_per_cluster}",
        as_json=as_json,
    )


@app.command()
def hub(
    writes: int = typer.Option(3000, min=1, help="Measured writes of each mode."),
    concurrency: int = typer.Option(
        48, min=1, help="Writes in flight at once (as in the fleet benchmark's --write-concurrency 48)."
    ),
    warmup: int = typer.Option(200, min=0, help="Writes of each mode done before measuring."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """The hub API server's CPU per Application mirror write, alone (vs a ConfigMap of the same bytes)."""
    from fleetplane import bench_hub

    result = asyncio.run(bench_hub.run(writes, concurrency=concurrency, warmup=warmup, report=_progress))
    _output(
        result.as_dict(),
        f"fleetplane bench hub --writes {writes} --concurrency {concurrency}",
        as_json=as_json,
        flat=_modes_as_rows,
    )


def _modes_as_rows(figures: dict[str, Any]) -> dict[str, Any]:
    """A table row per mode of ``bench hub``, its CPU per write first."""
    rows = {k: v for k, v in figures.items() if k != "modes"}
    for mode, measured in figures["modes"].items():
        rows[mode] = measured["cpu_ms_per_write"] | {
            k: v for k, v in measured.items() if k != "cpu_ms_per_write"
        }
    return rows


@app.command()
def provision(
    clusters: int = typer.Option(10, min=1, help="ClusterClaims applied at once (local provider)."),
    timeout: float = typer.Option(1800.0, help="Longest wait for all Ready, and for all deleted."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """The provisioner end to end: N claims -> N local clusters with Argo CD and a Maestro agent."""
    from fleetplane import bench_provision

    result = asyncio.run(bench_provision.run(clusters, timeout=timeout, report=_progress))
    _output(result.as_dict(), f"fleetplane bench provision --clusters {clusters}", as_json=as_json)


def _progress(line: str) -> None:
    err.print(line, highlight=False, markup=False, soft_wrap=True)


def _output(
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
        _print_table(title, flat(figures) if flat else figures)


def _print_table(title: str, figures: dict[str, Any]) -> None:
    table = Table(title=title)
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        if isinstance(value, float):
            shown = f"{value:,.1f}"
        elif isinstance(value, dict) and all(isinstance(v, dict) for v in value.values()):
            shown = "\n".join(f"{k}: {_pairs(v)}" for k, v in value.items())
        elif isinstance(value, dict):
            shown = _pairs(value)
        elif isinstance(value, list):
            shown = "\n".join(value)
        else:
            shown = "-" if value is None else str(value)
        table.add_row(key, shown)
    Console().print(table)


def _pairs(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())
