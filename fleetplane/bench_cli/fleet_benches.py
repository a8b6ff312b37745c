"""``fleetplane bench`` commands of the hub: fleet, commits, hub."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import typer

from benchmarks import compare, progress
from benchmarks.timeline import Timeline
from fleetplane import gc_tuning
from fleetplane.bench_cli.output import output, write_report
from fleetplane.bench_cli.typer_app import COMPARE, INSECURE, JSON, REPORT, ROUNDS, app, err, finished, modes


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
    insecure: bool = INSECURE,
    compare_modes: bool = COMPARE,
    with_argocd: bool = typer.Option(
        False,
        "--hub-argocd",
        help="Run argocd-server on the hub (it watches every Application) with the controllers "
        "writing each mirror's resource tree into its Redis.",
    ),
    compare_argocd: bool = typer.Option(
        False,
        "--compare-hub-argocd",
        help="Run it without, then with --hub-argocd, in turn (--rounds times each) and print what "
        "the hub's Argo CD costs: each mode's figures and the ratios with / without.",
    ),
    compare_argocd_appset: bool = typer.Option(
        False,
        "--compare-argocd-appset",
        help="First, on the same hub, time Argo CD's own ApplicationSet controller creating the same "
        "Applications from the same ApplicationSets (with its defaults, then with client QPS 2000, "
        "burst 4000 and 50 concurrent reconciliations), with CPU per Application of every process.",
    ),
    rounds: int = ROUNDS,
    as_json: bool = JSON,
    report: Path | None = REPORT,
) -> None:
    """The hub controllers end to end: ApplicationSets -> Maestro -> simulated agents -> hub status."""
    from benchmarks.fleet import harness, workload
    from benchmarks.fleet import report as fleet_report

    gc_tuning.tune()  # as in the agents it simulates (after the import: what it loaded is frozen too)
    try:
        chosen = workload.parse_phases(phases)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--phases") from None
    if (with_argocd or compare_argocd) and (insecure or compare_modes):
        raise typer.BadParameter(
            "the hub's Argo CD runs secure only (its Redis takes TLS): drop --insecure and --compare",
            param_hint="--hub-argocd",
        )
    if compare_argocd_appset and (with_argocd or compare_argocd or compare_modes):
        raise typer.BadParameter(
            "Argo CD's ApplicationSet controller is timed in a single run: drop --hub-argocd, "
            "--compare-hub-argocd and --compare",
            param_hint="--compare-argocd-appset",
        )
    settings = harness.FleetSettings(
        clusters,
        apps_per_cluster,
        argocd_sync_delay=argocd_sync_delay,
        refresh_seconds=refresh,
        phase_timeout=phase_timeout,
        writes=harness.StatusWrites(write_rate, write_concurrency),
        phases=chosen,
        insecure=insecure,
        hub_argocd=with_argocd,
        compare_argocd_appset=compare_argocd_appset,
    )
    title = f"fleetplane bench fleet --clusters {clusters} --apps-per-cluster {apps_per_cluster}"
    timelines: dict[str, Timeline] = {}
    with progress.for_console(err) as shown:

        def measure(label: str, plaintext: bool) -> dict[str, Any]:
            result, timelines[label] = asyncio.run(
                harness.run(dataclasses.replace(settings, insecure=plaintext), shown)
            )
            return result.as_dict()

        if compare_argocd:
            figures = _with_and_without_argocd(settings, timelines, rounds, shown)
        else:
            figures = modes(
                measure, "fleet", insecure, compare_modes, rounds, shown, fleet_report.PRICED_RATES
            )
    if compare_modes:
        title += " --compare"
    if compare_argocd:
        title += " --compare-hub-argocd"
    if compare_argocd_appset:
        title += " --compare-argocd-appset"
    output(figures, title, as_json=as_json)
    if report is not None:
        write_report(report, "fleet", title, figures, timelines)


def _with_and_without_argocd(
    settings: Any, timelines: dict[str, Timeline], rounds: int, shown: progress.Progress
) -> dict[str, Any]:
    """Alternating rounds without and with the hub's Argo CD, and the ratios with / without."""
    from benchmarks.fleet import harness
    from benchmarks.fleet import report as fleet_report

    runs: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
    for round_ in range(1, rounds + 1):
        for with_argocd in (False, True):
            label = f"fleet-{'with' if with_argocd else 'without'}-argocd-{round_}"
            shown(f"[bench] round {round_} of {rounds}: {label}")
            result, timelines[label] = asyncio.run(
                harness.run(dataclasses.replace(settings, hub_argocd=with_argocd), shown)
            )
            runs[with_argocd].append(finished(shown, label, result.as_dict()))
    return compare.price(runs[True], runs[False], fleet_report.PRICED_RATES, ("with_argocd", "without"))


@app.command()
def commits(
    before: str = typer.Option(
        ..., help="The commit to compare against (a commit id, tag or branch of this repository)."
    ),
    after: str = typer.Option("HEAD", help="The commit measured against it."),
    clusters: int = typer.Option(300, min=1, help="bench fleet's --clusters."),
    apps_per_cluster: int = typer.Option(10, min=1, help="bench fleet's --apps-per-cluster."),
    phases: str = typer.Option("create,update,delete", help="bench fleet's --phases."),
    write_rate: float = typer.Option(200.0, help="bench fleet's --write-rate."),
    write_concurrency: int = typer.Option(16, min=1, help="bench fleet's --write-concurrency."),
    phase_timeout: float = typer.Option(1800.0, help="bench fleet's --phase-timeout."),
    rounds: int = typer.Option(1, min=1, help="Runs of each commit, alternating before and after."),
    repo: Path = typer.Option(
        Path("."), file_okay=False, help="The git repository the commits are of (default: here)."
    ),
    keep: bool = typer.Option(False, help="Keep the commits' temporary worktrees (their paths are shown)."),
    as_json: bool = JSON,
) -> None:
    """bench fleet for two commits back to back (a worktree of each, this interpreter and its
    packages) and the ratios after / before of Applications/s and CPU per Application."""
    from benchmarks import commits as commits_bench
    from benchmarks.fleet import workload

    try:
        workload.parse_phases(phases)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--phases") from None
    fleet_args = [
        *("--clusters", str(clusters), "--apps-per-cluster", str(apps_per_cluster), "--phases", phases),
        *("--write-rate", str(write_rate), "--write-concurrency", str(write_concurrency)),
        *("--phase-timeout", str(phase_timeout)),
    ]
    with progress.for_console(err) as shown:
        try:
            figures = commits_bench.run(
                repo, (before, after), fleet_args, rounds=rounds, progress=shown, keep=keep
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--before/--after") from None
    title = f"fleetplane bench commits --before {before} --after {after} {' '.join(fleet_args)}"
    output(figures, title, as_json=as_json)


@app.command()
def hub(
    writes: int = typer.Option(3000, min=1, help="Measured writes of each mode."),
    concurrency: int = typer.Option(
        48, min=1, help="Writes in flight at once (as in the fleet benchmark's --write-concurrency 48)."
    ),
    warmup: int = typer.Option(200, min=0, help="Writes of each mode done before measuring."),
    as_json: bool = JSON,
) -> None:
    """The hub API server's CPU per Application mirror write, alone (vs a ConfigMap of the same bytes)."""
    from benchmarks import hub as hub_bench

    with progress.for_console(err) as shown:
        result = asyncio.run(hub_bench.run(writes, progress=shown, concurrency=concurrency, warmup=warmup))
    output(
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
