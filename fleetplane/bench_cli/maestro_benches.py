"""``fleetplane bench`` commands of the Maestro pipeline: pipeline, publish, consumers, fuzz, soak, chaos."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from benchmarks import pipeline as pipeline_bench
from benchmarks import progress
from benchmarks.timeline import Timeline
from fleetplane import gc_tuning
from fleetplane.bench_cli.output import output, print_rows, print_table, write_report, written
from fleetplane.bench_cli.typer_app import COMPARE, INSECURE, JSON, REPORT, ROUNDS, app, err, modes


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
    as_json: bool = JSON,
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

        figures = modes(
            measure, "pipeline", insecure, compare_modes, rounds, shown, pipeline_bench.PRICED_RATES
        )
    if compare_modes:
        title += " --compare"
    output(figures, title, as_json=as_json)
    if report is not None:
        write_report(report, "pipeline", title, figures, timelines)


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
    as_json: bool = JSON,
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
        output(result.as_dict(), title, as_json=True)
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
def consumers(
    count: int = typer.Option(1000, "--count", min=1, help="Consumers registered and deleted again."),
    concurrency: int = typer.Option(8, min=1, help="Registrations (each followed by its deletion) at once."),
    insecure: bool = INSECURE,
    as_json: bool = JSON,
) -> None:
    """Register and delete N consumers (no clusters): what Kafka keeps of them (partitions, topics, ACLs)."""
    from benchmarks import consumers as consumers_bench

    with progress.for_console(err) as shown:
        result = asyncio.run(consumers_bench.run(count, concurrency, shown, insecure=insecure))
    output(result.as_dict(), f"fleetplane bench consumers --count {count}", as_json=as_json)


@app.command()
def fuzz(
    events: int = typer.Option(10_000, "--events", min=1, help="Malformed CloudEvents to send."),
    seed: int = typer.Option(27, help="Seed of the random defects (the same seed sends the same events)."),
    insecure: bool = INSECURE,
    as_json: bool = JSON,
) -> None:
    """Send N malformed CloudEvents over raw gRPC as an authorized client: every one must be
    refused, nothing stored may change, and the server must still serve."""
    from benchmarks import fuzz as fuzz_bench

    with progress.for_console(err) as shown:
        figures = asyncio.run(fuzz_bench.bench(events, seed, shown, insecure=insecure))
    output(figures, f"fleetplane bench fuzz --events {events}", as_json=as_json)
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
    as_json: bool = JSON,
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
    output(result.figures, title, as_json=as_json)
    if report is not None:
        from benchmarks import reports

        written(reports.write_curves(report, "soak", title, result.figures, result.panels))


@app.command()
def chaos(
    works: int = typer.Option(2000, min=10, help="Works in each fault's rollout."),
    faults: str = typer.Option(
        "",
        "--faults",
        help="The faults to strike, comma-separated, in order (default: all of them): "
        "maestro-replica, agent, postgres, kafka-broker, agent-kafka-cut, controllers-leader, "
        "provisioner-leader.",
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
    as_json: bool = JSON,
) -> None:
    """Strike the chaos suite's faults at scale: for each in turn, a rollout of --works works (created,
    every third updated, every fifth deleted) through two Maestro replicas, on PostgreSQL with fsync
    on, a three-broker Kafka and simulated agent processes, struck a third of the way through by the
    fault (kill -9 of a replica, of an agent, of PostgreSQL, of a broker; a network cut between an
    agent and Kafka). Prints, per fault, the calls and retries, the seconds from the fault to its
    recovery and from the last call to the exact outcome, and the verdict. The kills of the
    operators' leaders run two replicas of the operator on a hub started for them, over the same
    pipeline: controllers-leader serves about --works Applications (ApplicationSets x clusters) to
    the simulated agents, every third ApplicationSet changed before the kill and every fifth deleted
    while nobody leads; provisioner-leader provisions --works/10 ClusterClaims (at least 20;
    simulated clusters), then deletes them. Their recovery is the standby holding the Lease."""
    from benchmarks.chaos import run as chaos_run

    chosen = [f.strip() for f in faults.split(",") if f.strip()] or list(chaos_run.ALL_FAULTS)
    unknown = [f for f in chosen if f not in chaos_run.ALL_FAULTS]
    if unknown:
        err.print(
            f"[red]error:[/red] --faults: unknown {', '.join(unknown)}; "
            f"choose among {', '.join(chaos_run.ALL_FAULTS)}"
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
        output(result, title, as_json=True)
        return
    print_table(title, {k: v for k, v in result.items() if k != "faults"})
    print_rows("each fault", "fault", result["faults"])
