"""``fleetplane local``: build, start, inspect and stop the real local fleet."""

from __future__ import annotations

import fcntl
import os
import signal
import sys
import time
from pathlib import Path
from typing import IO

import typer
import yaml
from rich.console import Console

from bootstrap import local_components
from fleetplane import build_progress, local_install, local_status, output
from fleetplane.demo import gitops as demo_gitops
from fleetplane.demo import hold as demo_hold
from fleetplane.demo import journey
from localinfra import (
    argocd_ui,
    argocd_ui_binary,
    build,
    fleet,
    gitrepo,
    image,
    kube,
    paths,
    platform,
    process,
    pulumi_cli,
)
from localinfra.environment import Environment
from localinfra.errors import InfraError

app = typer.Typer(
    help="The local fleet: PostgreSQL, Kafka, a hub cluster and worker clusters with Argo CD.",
    no_args_is_help=True,
)


class _Console(Console):
    """A console that outlives its terminal: when a write finds the pipe's reader gone (``make
    demo | tee`` stopped with Ctrl-C stops ``tee`` too) it goes quiet, and standard output and
    error go to /dev/null, instead of rich's default of exiting at once — which would skip the
    demo's ``pulumi destroy``."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        sink = os.open(os.devnull, os.O_WRONLY)
        for stream in (sys.stdout, sys.stderr):
            os.dup2(sink, stream.fileno())
        os.close(sink)


console = _Console(stderr=True)
#: the environment of a bootstrap stack is named after it (the local stack's default)
STACK_ENV_PREFIX = "pulumi-"
ENV_OPTION = typer.Option("default", "--env", help="Name of the local environment (state under the cache).")


def _fail(exc: InfraError, env_name: str | None = None) -> None:
    console.print(f"[red]error:[/red] {exc}")
    if env_name:
        console.print(f"clean up with: fleetplane local down --env {env_name}")
    raise typer.Exit(1)


@app.command("build")
def build_cmd() -> None:
    """Install or build every component into the cache (skips what is already there), and make
    this machine's Pulumi passphrase (~/.cache/fleetplane/pulumi-passphrase) if there is none."""
    try:
        with build_progress.reporter() as report:
            build.ensure_all(report)
    except InfraError as exc:
        _fail(exc)
    console.print(f"the bootstrap stacks' passphrase is in {pulumi_cli.passphrase_file()}")


@app.command("hub-ui")
def hub_ui_cmd(
    argo_ui_dir: Path | None = typer.Option(
        None,
        "--argo-ui-dir",
        envvar=argocd_ui.ARGO_UI_DIR_ENV,
        help="A copy of the argo-ui sources at the commit Argo CD's ui/package.json pins, used instead "
        "of that Git URL (for a machine that cannot reach it).",
    ),
) -> None:
    """Build Argo CD's web UI from the ui/ sources of the Argo CD version the fleet runs (pnpm and
    webpack, dependencies from the npm registry) into ~/.cache/fleetplane/argocd-ui-<version>, then
    an argocd binary with it embedded (~/.cache/fleetplane/bin/argocd-with-ui-<version>), which the
    hub's argocd-server runs from then on (docs/demo.md). Needs `fleetplane local build` first; takes
    several minutes and about 2 GB of memory; it rebuilds each time it is run."""
    try:
        with build_progress.reporter() as report:
            built = argocd_ui.build_ui(argo_ui_dir, report)
            binary = argocd_ui_binary.build_binary(report)
    except InfraError as exc:
        _fail(exc)
    console.print(
        f"the UI is in {built.folder} ({built.size_bytes / 1e6:.1f} MB), built in {built.seconds:.0f}s "
        f"(largest process {built.peak_rss_bytes / 2**30:.2f} GiB resident; argo-ui from {built.argo_ui})"
    )
    console.print(f"argocd with the UI embedded: {binary.path}, built in {binary.seconds:.0f}s")


@app.command("image")
def image_cmd(
    role: list[str] = typer.Argument(None, help="Roles to build: server, agent, hub (default: all)."),
) -> None:
    """Build fleetplane's OCI images (docs/images.md) into ~/.cache/fleetplane/images, cached by
    their inputs, and print each one's layout, digest and size."""
    try:
        with build_progress.reporter() as report:
            built = image.build_images(role or tuple(image.ROLES), report)
    except InfraError as exc:
        _fail(exc)
    for item in built:
        size = f"{item.size / 1e6:.0f} MB"
        typer.echo(f"{item.name}:{item.tag}  {item.digest}  {size}  oci:{item.reference}")


@app.command()
def up(
    workers: int = typer.Option(2, min=0, help="Number of worker clusters."),
    kafka_brokers: int = typer.Option(
        1,
        "--kafka-brokers",
        help="Kafka brokers: 1, or 3 for a cluster whose topics keep 3 replicas (2 in sync) and "
        "survive the loss of a broker (three JVMs: about 1.5 GiB more memory).",
    ),
    env: str = ENV_OPTION,
    out: output.Format = output.OUTPUT,
) -> None:
    """Start the fleet and print where each part is. Processes keep running after this returns."""
    if kafka_brokers not in (1, 3):
        console.print(f"[red]error:[/red] --kafka-brokers takes 1 or 3, not {kafka_brokers}")
        raise typer.Exit(2)
    environment = Environment.named(env)
    if environment.processes:
        console.print(f"environment `{env}` is already up; `fleetplane local status --env {env}` shows it")
        raise typer.Exit(1)
    try:
        fleet.up(environment, workers, kafka_brokers=kafka_brokers)
    except InfraError as exc:
        _fail(exc, env)
    local_status.show(environment, out, processes=False)


@app.command()
def install(
    env: str = typer.Option("install", "--env", help="Name of the local environment (state in the cache)."),
    cases: bool = typer.Option(
        False, "--cases", help="Then apply the demo's two cluster claims and play its three cases."
    ),
) -> None:
    """Build the images (cached), start a local hub with PostgreSQL and Kafka, push the images to a
    local registry, `helm install` charts/fleetplane-hub on the hub and run its Deployments (by a
    kubelet when a node of the hub is Ready, else through the local workload runner:
    docs/install.md). Processes keep running; `fleetplane local down --env ENV` removes them."""
    environment = Environment.named(env)
    if environment.processes:
        console.print(f"environment `{env}` is already up; `fleetplane local down --env {env}` first")
        raise typer.Exit(1)
    started = time.monotonic()
    try:
        with build_progress.reporter() as report:
            installed = local_install.install(environment, report)
        console.print(
            f"the chart is installed ({installed.path}) in {time.monotonic() - started:.0f}s: "
            f"release {local_install.RELEASE} in namespace {local_install.NAMESPACE}, images in "
            f"{installed.registry}, hub kubeconfig {installed.hub.kubeconfig}"
        )
        for record in installed.processes:
            console.print(f"  {record.name} (pid {record.pid}, log {record.log})")
        if cases:
            _play_cases(environment, installed)
    except InfraError as exc:
        _fail(exc, env)
    console.print(f"remove it with: fleetplane local down --env {env}")


def _play_cases(environment: Environment, installed: local_install.Installation) -> None:
    """The demo's claims and its three cases (docs/demo.md), on the installed platform."""
    out = _Console()
    folder = environment.path("demo")
    repo = gitrepo.demo_apps_repo(folder / "apps")
    claims = folder / "claims.yaml"
    claims.write_text(yaml.safe_dump_all(local_components.claims(repo, 2), sort_keys=False))

    def dead() -> list[process.ProcessRecord]:
        return [r for r in environment.all_processes() if not process.is_alive(r)]

    journey.provision(claims, installed.hub, out, dead)
    provisioned = environment.child("provisioned")
    names = [n.removeprefix("cluster/") for n in provisioned.endpoints if n.startswith("cluster/")]
    workers = [kube.Cluster.from_env(provisioned, n) for n in names]
    logs = {
        component: Path(r.log)
        for r in installed.processes
        for component in ("controllers", "provisioner")
        if r.name.endswith(component)
    }
    journey.play(journey.Stage(installed.hub, workers, repo, folder, logs, dead), out)


@app.command()
def status(env: str = ENV_OPTION, out: output.Format = output.OUTPUT) -> None:
    """Show the endpoints and each process (running or dead). Exit code 1 if any process died."""
    environment = Environment.named(env)
    if not environment.processes:
        console.print(f"environment `{env}` is not running; start it with `fleetplane local up`")
        raise typer.Exit(1)
    if local_status.show(environment, out, processes=True):
        raise typer.Exit(1)


@app.command()
def down(env: str = ENV_OPTION) -> None:
    """Stop every process of the environment and delete its state (also after a crash)."""
    _stop(Environment.named(env))
    console.print(f"environment `{env}` is down")
    # The processes were the stack's resources: a state still listing them would make the next
    # `pulumi up` update parts that no longer exist instead of creating them.
    stack = pulumi_cli.Stack(env.removeprefix(STACK_ENV_PREFIX))
    if env.startswith(STACK_ENV_PREFIX) and stack.exists():
        stack.remove()
        console.print(f"Pulumi stack `{stack.name}` forgotten: the next `pulumi up` creates it afresh")


def demo(
    clusters: int = typer.Option(2, min=1, max=8, help="Cluster claims to apply (fleetplane:demoClusters)."),
    stack: str = typer.Option("local", "--stack", help="The bootstrap project's stack to bring up."),
    hold: str = typer.Option(
        demo_hold.DEFAULT,
        "--hold",
        metavar="DURATION",
        help="How long to keep the platform running for you to look at it (30m, 1h30m, 90s) before "
        "`pulumi destroy`; Ctrl-C ends it sooner.",
    ),
    no_hold: bool = typer.Option(False, "--no-hold", help="Do not hold: `pulumi destroy` after the cases."),
    gitops: bool = typer.Option(
        False,
        "--gitops",
        help="Play the ApplicationSet cases as commits to a platform Git repository that a management "
        "Argo CD on the hub syncs, instead of kubectl apply/delete.",
    ),
) -> None:
    """Play the journey of docs/demo.md: pulumi up the local stack, apply the cluster claims, wait
    until they are Ready, play the three ApplicationSet cases, hold the platform (30 minutes, or
    until Ctrl-C), then pulumi destroy (also when the terminal goes away)."""
    try:
        held = 0.0 if no_hold else demo_hold.parse(hold)
    except demo_hold.BadDuration as exc:
        raise typer.BadParameter(str(exc), param_hint="--hold") from None
    # A SIGTERM, or the terminal going away, ends the demo as Ctrl-C does: through pulumi destroy.
    for ended in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(ended, lambda *_: sys.exit(0))
    out = _Console()
    bootstrap = pulumi_cli.Stack(stack)
    failed = selected = False
    try:
        _only_demo_of(stack)
        with build_progress.reporter() as report:
            build.ensure_all(report)
        _forget_interrupted(bootstrap)
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
        steps: journey.StepsFor = journey.kubectl_steps
        if gitops:
            repo = root.path("demo", "platform")
            demo_gitops.announce(out, repo)
            demo_gitops.start(root, hub, repo)
            steps = demo_gitops.demo_steps(repo)
        journey.play(stage, out, steps=steps)
        argocd_access = (outputs["argocdUrl"], outputs["argocdPasswordCommand"], outputs["argocdLogin"])
        journey.argocd_hints(out, *argocd_access, ui_built=argocd_ui_binary.built_binary() is not None)
        if held:
            user = platform.tls_dir(platform.identity(root, platform.USER_IDENTITY))
            journey.hints(out, hub, outputs["maestroAddress"], root.root / "demo", user, root.all_processes())
            console.print(demo_hold.announcement(held), soft_wrap=True)
            if died := demo_hold.wait(held, dead):
                raise InfraError("a process died: " + ", ".join(f"{r.name} ({r.log})" for r in died))
            console.print("the hold is over")
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


#: the demo locks this process holds: open for as long as it lives
_HELD: list[IO[bytes]] = []


def _only_demo_of(stack: str) -> None:
    """Hold the stack's demo lock for the life of this process (the kernel lets go of it however
    the process ends, kill -9 included); refuse when another demo of the stack holds it."""
    folder = paths.envs_dir()
    folder.mkdir(parents=True, exist_ok=True)
    lock = (folder / f".demo-{stack}.lock").open("ab")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise InfraError(
            f"another `fleetplane demo` of stack {stack!r} is running",
            fix="stop it with Ctrl-C first, or give this one another stack with --stack",
        ) from None
    _HELD.append(lock)


def _forget_interrupted(bootstrap: pulumi_cli.Stack) -> None:
    """A stack present when no demo runs is what an interrupted demo left (killed before its
    ``pulumi destroy``): stop its processes and forget it, so ``pulumi up`` creates every part
    afresh rather than updating parts that are half gone."""
    if not bootstrap.exists():
        return
    environment = Environment.named(f"{STACK_ENV_PREFIX}{bootstrap.name}")
    console.print(
        f"stack `{bootstrap.name}` was left by an interrupted demo: stopping what it started "
        f"({environment.root}) and starting afresh"
    )
    _stop(environment)
    bootstrap.remove()


def _stop(environment: Environment) -> None:
    """Stop every process of the environment and delete its state, saying what did not stop."""
    for problem in fleet.down(environment):
        console.print(f"[yellow]warning:[/yellow] {problem}")


def _destroy(out: Console, bootstrap: pulumi_cli.Stack) -> bool:
    """``pulumi destroy``, to its end whatever happens to the terminal meanwhile: the user's
    second Ctrl-C, a closed output pipe (``make demo | tee demo.log`` stopped with Ctrl-C stops
    ``tee`` too) or a lost terminal. Its output goes to a log file as well as the terminal."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    log = paths.cache_root() / "logs" / f"demo-destroy-{bootstrap.name}.log"
    out.rule("pulumi destroy")
    out.print(f"[bold]$[/bold] cd bootstrap && pulumi destroy --stack {bootstrap.name}")
    out.print(f"(also written to {log}; Ctrl-C is ignored until it is done)")
    code = bootstrap.run_logged(
        "destroy", "--yes", "--skip-preview", log=log, echo=lambda line: out.out(line, highlight=False)
    )
    if code != 0:
        console.print(
            f"[red]pulumi destroy failed[/red] ({log}): stop what is left with "
            f"`fleetplane local down --env pulumi-{bootstrap.name}`"
        )
        return False
    bootstrap.remove()
    return True
