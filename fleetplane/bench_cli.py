"""``fleetplane bench``: benchmarks that print figures (never pass/fail on time)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from benchmarks import compare, progress
from benchmarks import pipeline as pipeline_bench
from benchmarks.timeline import Timeline
from fleetplane import gc_tuning

app = typer.Typer(
    help="Benchmarks that start what they need and print what they measure.", no_args_is_help=True
)
err = Console(stderr=True)
INSECURE = typer.Option(
    False,
    "--insecure",
    help="Plaintext with no authentication or authorization, for Maestro's gRPC and Kafka alike "
    "(default: TLS, a certificate per process, per-call authorization and Kafka ACLs, as deployed): "
    "to measure what security costs.",
)
REPORT = typer.Option(
    None,
    "--report",
    file_okay=False,
    help="Also write a report into this folder: the figures and what the run counted each second "
    "as JSON, with charts of throughput and latency over time (PNG).",
)
COMPARE = typer.Option(
    False,
    "--compare",
    help="Run it secure, then --insecure, in turn (--rounds times each) and print what security "
    "costs: each mode's figures and the ratios secure / insecure.",
)
ROUNDS = typer.Option(1, min=1, help="With --compare: alternating rounds of each mode.")


def _modes(
    measure: Callable[[str, bool], dict[str, Any]],
    name: str,
    insecure: bool,
    compare_modes: bool,
    rounds: int,
    shown: Callable[[str], None],
    rates: tuple[str, ...],
) -> dict[str, Any]:
    """One run in the mode asked for; or, with --compare, alternating secure and insecure rounds
    and what security costs. ``measure(label, insecure)`` runs once and labels its timeline."""
    if not compare_modes:
        return measure(name, insecure)
    secure_runs, insecure_runs = [], []
    for round_ in range(1, rounds + 1):
        shown(f"[bench] round {round_} of {rounds}: secure, then --insecure")
        secure_runs.append(measure(f"{name}-secure-{round_}", False))
        insecure_runs.append(measure(f"{name}-insecure-{round_}", True))
    return compare.security_price(secure_runs, insecure_runs, rates)


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
    insecure: bool = INSECURE,
    compare_modes: bool = COMPARE,
    rounds: int = ROUNDS,
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
    report: Path | None = REPORT,
) -> None:
    """Drive the Maestro pipeline with simulated agents over real PostgreSQL and Kafka."""
    gc_tuning.tune()  # as in the agents it simulates
    settings = pipeline_bench.PipelineSettings(
        clusters,
        works_per_cluster,
        concurrency=concurrency,
        paced_rate=paced_rate,
        paced_seconds=paced_seconds,
        durable=not fast_db,
        replicas=server_replicas,
        batch_publish=batch_publish,
        insecure=insecure,
    )
    title = f"fleetplane bench pipeline --clusters {clusters} --works-per-cluster {works_per_cluster}"
    timelines: dict[str, Timeline] = {}
    with progress.for_console(err) as shown:

        def measure(label: str, plaintext: bool) -> dict[str, Any]:
            run = pipeline_bench.run(dataclasses.replace(settings, insecure=plaintext), shown)
            result, timelines[label] = asyncio.run(run)
            return result.as_dict()

        figures = _modes(
            measure, "pipeline", insecure, compare_modes, rounds, shown, pipeline_bench.PRICED_RATES
        )
    if compare_modes:
        title += " --compare"
    _output(figures, title, as_json=as_json)
    if report is not None:
        _write_report(report, "pipeline", title, figures, timelines)


@app.command()
def publish(
    publishes: int = typer.Option(2000, min=1, help="Measured creates at each concurrency."),
    concurrency: list[int] = typer.Option(
        [1, 10], min=1, help="Clients publishing at once, one create in flight each (repeat for several)."
    ),
    warmup: int = typer.Option(200, min=0, help="Creates before measuring."),
    bundle_kib: int = typer.Option(16, min=1, help="KiB of manifests in each work (upstream's are ~16)."),
    upstream_server: list[Path] = typer.Option(
        [],
        "--upstream-server",
        exists=True,
        dir_okay=False,
        help="An upstream Maestro `maestro` binary to run the same load against, on the same "
        "PostgreSQL (repeat for several). Default: the one `python -m localinfra.upstream_maestro` "
        "built into the cache; without either, upstream is skipped with a note.",
    ),
    upstream_driver: Path | None = typer.Option(
        None,
        exists=True,
        dir_okay=False,
        help="The driver of upstream Maestro's Go clients that makes the load. Default: the cached "
        "build; without either, fleetplane's own client sends the same events and no list is timed.",
    ),
    list_bundles: int = typer.Option(
        6000, min=0, help="Works each server holds when listing them all back is timed (0: no list)."
    ),
    upstream_publishes: int | None = typer.Option(
        None,
        min=1,
        help="Measured creates at each concurrency for upstream (default: --publishes). Secure, "
        "upstream takes about 5 creates/s: its authorizer's Kubernetes client is limited to 5 "
        "requests/s.",
    ),
    insecure: bool = INSECURE,
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """One CloudEvent per Publish call, as upstream's source clients send: creates/s, latency, the
    time to list every work back, beside upstream Maestro's server when it is built.

    Both servers run secure by default, their clients presenting a source certificate from the
    platform CA: fleetplane's with mutual TLS and its cached per-call authorization, upstream's
    with mutual TLS (--grpc-authn-type=mtls) and a SubjectAccessReview to a kube-apiserver per
    call. --insecure runs both plaintext with no authorization."""
    from benchmarks import publish as publish_bench

    settings = publish_bench.PublishSettings(
        publishes=publishes,
        concurrencies=tuple(concurrency),
        warmup=warmup,
        bundle_kib=bundle_kib,
        insecure=insecure,
        upstream_servers=tuple(upstream_server),
        driver=upstream_driver,
        list_bundles=list_bundles,
        upstream_publishes=upstream_publishes,
    )
    with progress.for_console(err) as shown:
        result = asyncio.run(publish_bench.run(settings, shown))
    levels = " ".join(f"--concurrency {c}" for c in concurrency)
    title = f"fleetplane bench publish --publishes {publishes} {levels} --bundle-kib {bundle_kib}"
    if upstream_publishes is not None:
        title += f" --upstream-publishes {upstream_publishes}"
    if insecure:
        title += " --insecure"
    if as_json:
        _output(result.as_dict(), title, as_json=True)
    else:
        _print_publish_table(title, result)


def _print_publish_table(title: str, result: Any) -> None:
    """A row per server and concurrency; the list times, ratios and notes below."""
    caption = [f"load: {result.client}"]
    caption += [
        f"{server}: {result.listed[server]:,} works listed through REST in {seconds:.2f} s"
        for server, seconds in result.list_seconds.items()
    ]
    caption += [
        f"fleetplane / upstream accepted creates/s at {c} in flight: {r:.2f}x"
        for c, r in result.ratios().items()
    ]
    table = Table(title=title, caption="\n".join([*caption, *result.notes]))
    columns = ("server", "in flight", "creates/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors")
    for column in (*columns, "CPU ms per create", "RSS MB"):
        table.add_column(column, justify="left" if column == "server" else "right")
    for level in result.levels:
        table.add_row(
            level.server,
            str(level.concurrency),
            f"{level.creates_per_s:,.0f}",
            f"{level.p50_ms:.2f}",
            f"{level.p95_ms:.2f}",
            f"{level.p99_ms:.2f}",
            f"{level.max_ms:.1f}",
            str(level.errors),
            ", ".join(f"{name} {ms:.2f}" for name, ms in level.cpu_ms_per_create.items()),
            f"{result.server_rss_mb.get(level.server, 0.0):.0f}",
        )
    Console().print(table)


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
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
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
            figures = _modes(
                measure, "fleet", insecure, compare_modes, rounds, shown, fleet_report.PRICED_RATES
            )
    if compare_modes:
        title += " --compare"
    if compare_argocd:
        title += " --compare-hub-argocd"
    if compare_argocd_appset:
        title += " --compare-argocd-appset"
    _output(figures, title, as_json=as_json)
    if report is not None:
        _write_report(report, "fleet", title, figures, timelines)


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
            runs[with_argocd].append(result.as_dict())
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
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
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
    _output(figures, title, as_json=as_json)


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
    from benchmarks import hub as hub_bench

    with progress.for_console(err) as shown:
        result = asyncio.run(hub_bench.run(writes, progress=shown, concurrency=concurrency, warmup=warmup))
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
        help="One report of two runs: --untuned-clusters clusters untuned, then --clusters tuned.",
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
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
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
    _output(figures, title, as_json=as_json)


@app.command()
def consumers(
    count: int = typer.Option(1000, "--count", min=1, help="Consumers registered and deleted again."),
    concurrency: int = typer.Option(8, min=1, help="Registrations (each followed by its deletion) at once."),
    insecure: bool = INSECURE,
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """Register and delete N consumers (no clusters): what Kafka keeps of them (partitions, topics, ACLs)."""
    from benchmarks import consumers as consumers_bench

    with progress.for_console(err) as shown:
        result = asyncio.run(consumers_bench.run(count, concurrency, shown, insecure=insecure))
    _output(result.as_dict(), f"fleetplane bench consumers --count {count}", as_json=as_json)


@app.command()
def fuzz(
    events: int = typer.Option(10_000, "--events", min=1, help="Malformed CloudEvents to send."),
    seed: int = typer.Option(27, help="Seed of the random defects (the same seed sends the same events)."),
    insecure: bool = INSECURE,
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """Send N malformed CloudEvents over raw gRPC as an authorized client: every one must be
    refused, nothing stored may change, and the server must still serve."""
    from benchmarks import fuzz as fuzz_bench

    with progress.for_console(err) as shown:
        figures = asyncio.run(fuzz_bench.bench(events, seed, shown, insecure=insecure))
    _output(figures, f"fleetplane bench fuzz --events {events}", as_json=as_json)
    if (
        figures["taken (must be none)"] != "none"
        or not figures["stored unchanged"]
        or not figures["serving after"]
    ):
        raise typer.Exit(1)


@app.command()
def soak(
    minutes: float = typer.Option(..., "--minutes", min=0.5, help="How long to keep the load on."),
    clusters: int = typer.Option(10, min=1, help="Simulated clusters (agents)."),
    works: int = typer.Option(200, min=1, help="Works kept alive across the clusters (about)."),
    rate: float = typer.Option(
        10.0, min=0.1, help="Operations per second: creates, updates, deletes and status changes."
    ),
    interval: float = typer.Option(30.0, min=1.0, help="Seconds between samples (and progress lines)."),
    insecure: bool = INSECURE,
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
    report: Path | None = REPORT,
) -> None:
    """Keep a steady mix of creates, updates, deletes and status changes going on real PostgreSQL,
    Kafka and a Maestro server with simulated agents, sampling each process's memory, descriptors
    and TCP connections, the outbox and the Kafka lags; print each curve's trend over the last two
    thirds of the run (with --report, its charts too)."""
    from benchmarks import soak as soak_bench

    gc_tuning.tune()  # as in the agents it simulates
    settings = soak_bench.SoakSettings(minutes, clusters, works, rate, interval, insecure)
    with progress.for_console(err) as shown:
        result = asyncio.run(soak_bench.run(settings, shown))
    title = f"fleetplane bench soak --minutes {minutes:g}"
    _output(result.figures, title, as_json=as_json)
    if report is not None:
        from benchmarks import reports

        _written(reports.write_curves(report, "soak", title, result.figures, result.panels))


@app.command()
def chaos(
    works: int = typer.Option(2000, min=10, help="Works in each fault's rollout."),
    faults: str = typer.Option(
        "",
        "--faults",
        help="The faults to strike, comma-separated, in order (default: all of them): "
        "maestro-replica, agent, postgres, kafka-broker, agent-kafka-cut.",
    ),
    agents: int = typer.Option(4, min=2, help="Simulated agent processes (clusters)."),
    brokers: int = typer.Option(
        3,
        help="Kafka brokers: 3 (topics kept three times, two in sync), or 1 to start faster "
        "(without the kafka-broker fault).",
    ),
    converge_timeout: float = typer.Option(
        600.0, min=10.0, help="Seconds to wait for each rollout's exact outcome after its last call."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON."),
) -> None:
    """Strike the chaos suite's faults at scale: for each in turn, a rollout of --works works (created,
    every third updated, every fifth deleted) through two Maestro replicas, on PostgreSQL with fsync
    on, a three-broker Kafka and simulated agent processes, struck a third of the way through by the
    fault (kill -9 of a replica, of an agent, of PostgreSQL, of a broker; a network cut between an
    agent and Kafka). Prints, per fault, the calls and retries, the seconds from the fault to its
    recovery and from the last call to the exact outcome, and the verdict."""
    from benchmarks.chaos import faults as chaos_faults
    from benchmarks.chaos import run as chaos_run

    chosen = [f.strip() for f in faults.split(",") if f.strip()] or list(chaos_faults.FAULTS)
    unknown = [f for f in chosen if f not in chaos_faults.FAULTS]
    if unknown:
        err.print(
            f"[red]error:[/red] --faults: unknown {', '.join(unknown)}; "
            f"choose among {', '.join(chaos_faults.FAULTS)}"
        )
        raise typer.Exit(2)
    if brokers not in (1, 3):
        err.print(f"[red]error:[/red] --brokers {brokers}: a local Kafka has 1 or 3 brokers")
        raise typer.Exit(2)
    if brokers == 1 and "kafka-broker" in chosen:
        err.print(
            "[red]error:[/red] --faults kafka-broker needs --brokers 3 (one broker killed, two serving)"
        )
        raise typer.Exit(2)
    settings = chaos_run.ChaosSettings(works, chosen, agents, brokers, converge_timeout)
    with progress.for_console(err) as shown:
        result = asyncio.run(chaos_run.run(settings, shown))
    title = f"fleetplane bench chaos --works {works}" + (f" --faults {','.join(chosen)}" if faults else "")
    title += f" --brokers {brokers}" if brokers != 3 else ""
    if as_json:
        print(json.dumps(result, indent=2))
        return
    _print_table(title, {k: v for k, v in result.items() if k != "faults"})
    _print_rows("each fault", "fault", result["faults"])


def _write_report(
    folder: Path, name: str, title: str, figures: dict[str, Any], timelines: Mapping[str, Timeline]
) -> None:
    from benchmarks import reports

    _written(reports.write(folder, name, title, figures, timelines))


def _written(report: Path) -> None:
    err.print(f"[bench] report written to {report}", highlight=False, markup=False, soft_wrap=True)


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


def _print_rows(title: str, key: str, rows: Mapping[str, Mapping[str, Any]]) -> None:
    """One row per entry of ``rows``, a column per figure (the first row's, in its order)."""
    table = Table(title=title)
    columns = list(next(iter(rows.values()), {}))
    for column in [key, *columns]:
        table.add_column(column)
    for name, row in rows.items():
        table.add_row(name, *("-" if row.get(c) is None else str(row.get(c)) for c in columns))
    Console().print(table)


def _pairs(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())
