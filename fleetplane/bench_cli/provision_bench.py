"""``fleetplane bench provision``: the provisioner with local or simulated clusters."""

from __future__ import annotations

import asyncio

import typer

from benchmarks import progress
from fleetplane.bench_cli.output import output
from fleetplane.bench_cli.typer_app import INSECURE, JSON, app, err


@app.command()
def provision(
    clusters: int = typer.Option(10, min=1, help="ClusterClaims applied at once (local provider)."),
    simulated: bool = typer.Option(
        False,
        "--simulated",
        help="Simulated clusters (the provisioner's `simulated` provider; everything else real): "
        "--claims claims to Ready, a Composition change rolled out to all, then deleted.",
    ),
    claims: int = typer.Option(1000, min=1, help="With --simulated: ClusterClaims applied at once."),
    untuned: bool = typer.Option(
        False,
        "--untuned",
        help="Run the clusters with each component's defaults instead of the local worker tuning "
        "(docs/local-fleet.md).",
    ),
    compare_tuning: bool = typer.Option(
        False,
        "--compare-tuning",
        help="One report of two runs on one hub: --untuned-clusters clusters untuned, then --clusters "
        "tuned (the provisioner started again with the other tuning in between).",
    ),
    untuned_clusters: int = typer.Option(
        4, min=1, help="With --compare-tuning: the untuned run's clusters (a count that fits in memory)."
    ),
    min_available_mb: float = typer.Option(
        2048.0,
        min=0,
        help="Stop waiting (and delete the clusters) when the machine's available memory falls "
        "below this many MB, so other jobs on a shared machine keep theirs.",
    ),
    timeout: float = typer.Option(1800.0, help="Longest wait for each step (Ready, rolled out, deleted)."),
    insecure: bool = INSECURE,
    as_json: bool = JSON,
) -> None:
    """The provisioner end to end: N claims -> N local clusters with Argo CD and a Maestro agent; or,
    with --simulated, the provisioner itself at fleet scale. Check free memory first: an untuned
    local cluster holds about 1 GB."""
    with progress.for_console(err) as shown:
        if simulated:
            from benchmarks import provision_simulated

            measured = provision_simulated.run(claims, progress=shown, timeout=timeout, insecure=insecure)
            figures = asyncio.run(measured).as_dict()
            title = f"fleetplane bench provision --simulated --claims {claims}"
        else:
            from benchmarks import provision as provision_bench
            from localinfra import tuning

            if compare_tuning:
                compared = provision_bench.compare(
                    untuned_clusters,
                    clusters,
                    progress=shown,
                    timeout=timeout,
                    insecure=insecure,
                    min_available_mb=min_available_mb,
                )
                figures = asyncio.run(compared).as_dict()
                title = (
                    f"fleetplane bench provision --compare-tuning --untuned-clusters {untuned_clusters} "
                    f"--clusters {clusters}"
                )
            else:
                chosen = tuning.UNTUNED if untuned else tuning.TUNED
                run = provision_bench.run(
                    clusters,
                    progress=shown,
                    timeout=timeout,
                    insecure=insecure,
                    worker_tuning=chosen,
                    min_available_mb=min_available_mb,
                )
                figures = asyncio.run(run).as_dict()
                title = f"fleetplane bench provision --clusters {clusters}{' --untuned' if untuned else ''}"
    output(figures, title, as_json=as_json)
