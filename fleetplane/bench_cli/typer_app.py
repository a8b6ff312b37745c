"""The ``fleetplane bench`` Typer app, the options its commands share, and secure/insecure rounds."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable
from typing import Any

import typer
from rich.console import Console

from benchmarks import compare

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
JSON = typer.Option(False, "--json", help="Print the figures as JSON.")


def modes(
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
    secure_runs: list[dict[str, Any]] = []
    insecure_runs: list[dict[str, Any]] = []
    for round_ in range(1, rounds + 1):
        shown(f"[bench] round {round_} of {rounds}: secure, then --insecure")
        for mode, plaintext, runs in (("secure", False, secure_runs), ("insecure", True, insecure_runs)):
            label = f"{name}-{mode}-{round_}"
            runs.append(finished(shown, label, measure(label, plaintext)))
    return compare.security_price(secure_runs, insecure_runs, rates)


def finished(shown: Callable[[str], None], label: str, figures: dict[str, Any]) -> dict[str, Any]:
    """One run of a comparison, its figures shown as it ends: a later run that fails loses none."""
    shown(f"[bench] {label} done: {json.dumps(figures, separators=(',', ':'))}")
    return figures


@app.callback()
def _stop_cleanly() -> None:
    # A benchmark stopped with SIGTERM (kill, a CI timeout) unwinds as on Ctrl-C: the processes it
    # started are stopped and its temporary environment removed, instead of left running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
