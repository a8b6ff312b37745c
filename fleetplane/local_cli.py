"""``fleetplane local``: build, start, inspect and stop the real local fleet."""

from __future__ import annotations

import signal
import sys
import time

import typer
from rich.console import Console
from rich.table import Table

from fleetplane.demo import journey
from localinfra import build, fleet
from localinfra.environment import Environment
from localinfra.errors import InfraError

app = typer.Typer(
    help="The local fleet: PostgreSQL, Kafka, a hub cluster and worker clusters with Argo CD.",
    no_args_is_help=True,
)
console = Console(stderr=True)
ENV_OPTION = typer.Option("default", "--env", help="Name of the local environment (state under the cache).")


def _fail(exc: InfraError, env_name: str | None = None) -> None:
    console.print(f"[red]error:[/red] {exc}")
    if env_name:
        console.print(f"clean up with: fleetplane local down --env {env_name}")
    raise typer.Exit(1)


@app.command("build")
def build_cmd() -> None:
    """Install or build every component into the cache (skips what is already there)."""
    try:
        build.ensure_all()
    except InfraError as exc:
        _fail(exc)


@app.command()
def up(
    workers: int = typer.Option(2, min=0, help="Number of worker clusters."), env: str = ENV_OPTION
) -> None:
    """Start the fleet and print where each part is. Processes keep running after this returns."""
    environment = Environment.named(env)
    if environment.processes:
        console.print(f"environment `{env}` is already up; `fleetplane local status --env {env}` shows it")
        raise typer.Exit(1)
    try:
        fleet.up(environment, workers)
    except InfraError as exc:
        _fail(exc, env)
    print_endpoints(environment)


def print_endpoints(environment: Environment) -> None:
    table = Table(title=f"fleetplane local environment ({environment.root})")
    table.add_column("component")
    table.add_column("where")
    for name, values in sorted(environment.endpoints.items()):
        table.add_row(name, "  ".join(f"{k}={v}" for k, v in values.items()))
    Console().print(table)


def print_status(environment: Environment) -> int:
    table = Table(title="processes")
    for col in ("process", "pid", "state", "log"):
        table.add_column(col)
    dead = 0
    for row in fleet.status(environment):
        dead += not row["alive"]
        state = "[green]running[/green]" if row["alive"] else "[red]dead[/red]"
        table.add_row(row["name"], str(row["pid"]), state, row["log"])
    Console().print(table)
    return dead


@app.command()
def status(env: str = ENV_OPTION) -> None:
    """Show each process (alive or dead) and the endpoints. Exit code 1 if any process died."""
    environment = Environment.named(env)
    if not environment.processes:
        console.print(f"environment `{env}` is not running; start it with `fleetplane local up`")
        raise typer.Exit(1)
    print_endpoints(environment)
    if print_status(environment):
        raise typer.Exit(1)


@app.command()
def down(env: str = ENV_OPTION) -> None:
    """Stop every process of the environment and delete its state (also after a crash)."""
    problems = fleet.down(Environment.named(env))
    for problem in problems:
        console.print(f"[yellow]warning:[/yellow] {problem}")
    console.print(f"environment `{env}` is down")


def demo(
    workers: int = typer.Option(2, min=1, help="Number of worker clusters."),
    env: str = typer.Option("demo", "--env", help="Name of the demo environment."),
    hold: bool = typer.Option(True, help="Keep running until Ctrl-C (--no-hold: stop at once)."),
) -> None:
    """The demo: start the local fleet and the pull pipeline, play the source document's three
    ApplicationSet cases (``fleetplane/demo/journey.py``), hold until Ctrl-C, then clean up."""
    environment = Environment.named(env)
    fleet.down(environment)
    environment = Environment.named(env)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    out = Console()
    try:
        running = fleet.up(environment, workers)
        journey.play(environment, running, out)
        print_endpoints(environment)
        if hold:
            journey.hints(environment, running, out)
            console.print("press Ctrl-C to stop everything")
            while True:
                time.sleep(5)
                if environment.dead_processes():
                    print_status(environment)
                    raise InfraError("a process died", fix="read its log (listed above)")
    except InfraError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        pass
    finally:
        console.print("stopping the fleet ...")
        for problem in fleet.down(environment):
            console.print(f"[yellow]warning:[/yellow] {problem}")
        console.print("stopped")
