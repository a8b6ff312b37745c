"""``fleetplane local``: build, start, inspect and stop the real local fleet."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from fleetplane.demo import journey
from localinfra import build, fleet, kube, process, pulumi_cli
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
    clusters: int = typer.Option(2, min=1, max=8, help="Cluster claims to apply (fleetplane:demoClusters)."),
    stack: str = typer.Option("local", "--stack", help="The bootstrap project's stack to bring up."),
    hold: bool = typer.Option(True, help="Keep running until Ctrl-C (--no-hold: stop at once)."),
) -> None:
    """The README's journey: ``pulumi up`` (the local stack), ``kubectl apply`` the cluster claims,
    wait until they are Ready, play the source document's three ApplicationSet cases
    (``fleetplane/demo/journey.py``), hold until Ctrl-C, then ``pulumi destroy``."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    out = Console()
    bootstrap = pulumi_cli.Stack(stack)
    failed = selected = False
    try:
        build.ensure_all()
        bootstrap.select()
        selected = True
        bootstrap.run("config", "set", "fleetplane:demoClusters", str(clusters))
        out.rule("pulumi up: the management cluster and the platform")
        out.print(f"[bold]$[/bold] cd bootstrap && pulumi up --stack {stack}")
        bootstrap.run("up", "--yes", "--skip-preview", capture=False)
        outputs = bootstrap.outputs()
        root = Environment(Path(outputs["environment"]))
        hub = kube.Cluster("hub", outputs["hubServer"], Path(outputs["kubeconfig"]))

        def dead() -> list[process.ProcessRecord]:
            return [r for r in root.all_processes() if not process.is_alive(r)]

        journey.provision(Path(outputs["claimsFile"]), hub, out, dead)
        provisioned = root.child("provisioned")
        # A cluster's endpoint is `cluster/<name>`; its Argo CD's is `argocd/<name>`.
        names = [n.removeprefix("cluster/") for n in provisioned.endpoints if n.startswith("cluster/")]
        workers = [kube.Cluster.from_env(provisioned, n) for n in names]
        logs = {name: root.root / name / "logs" / f"{name}.log" for name in ("controllers", "provisioner")}
        stage = journey.Stage(hub, workers, outputs["appsRepo"], root.path("demo"), logs, dead)
        journey.play(stage, out)
        if hold:
            journey.hints(out, hub, outputs["maestroAddress"], root.root / "demo")
            console.print("press Ctrl-C to run `pulumi destroy`")
            while not dead():
                time.sleep(5)
            raise InfraError("a process died: " + ", ".join(f"{r.name} ({r.log})" for r in dead()))
    except InfraError as exc:
        failed = True
        console.print(f"[red]error:[/red] {exc}")
    except KeyboardInterrupt:
        pass
    finally:
        if selected:
            failed = not _destroy(out, bootstrap) or failed
    if failed:
        raise typer.Exit(1)


def _destroy(out: Console, bootstrap: pulumi_cli.Stack) -> bool:
    out.rule("pulumi destroy")
    out.print(f"[bold]$[/bold] cd bootstrap && pulumi destroy --stack {bootstrap.name}")
    destroyed = bootstrap.run("destroy", "--yes", "--skip-preview", capture=False, check=False)
    if destroyed.returncode != 0:
        console.print(
            "[red]pulumi destroy failed[/red]: stop what is left with "
            f"`fleetplane local down --env pulumi-{bootstrap.name}`"
        )
        return False
    bootstrap.remove()
    return True
