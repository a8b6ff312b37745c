"""``fleetplane provisioner``: run the claim/composite/composition operator, install its CRDs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from fleetplane import logs
from kubeio import objects
from kubeio.rest import KubeRest
from localinfra.environment import Environment
from maestro.transport import layout
from provisioner import operator

app = typer.Typer(help="Claims -> composites -> worker clusters with Argo CD and a Maestro agent.")

KUBECONFIG = typer.Option(
    None,
    "--kubeconfig",
    envvar="KUBECONFIG",
    help="The management cluster's kubeconfig (default: in-cluster).",
)


@app.callback()
def _group() -> None:
    """Keeps the subcommands named."""


@app.command()
def run(
    kubeconfig: str = KUBECONFIG,
    maestro: str = typer.Option("127.0.0.1:8090", "--maestro", envvar="MAESTRO_SERVER", help="Maestro gRPC."),
    kafka: str = typer.Option(..., "--kafka", envvar="KAFKA_BOOTSTRAP", help="Kafka the agents connect to."),
    topic_prefix: str = typer.Option(
        layout.DEFAULT.prefix,
        "--topic-prefix",
        help="Maestro's topic prefix (the server's; the agents get it).",
    ),
    local_env: str = typer.Option(
        None,
        "--local-env",
        help="Serve the `local` provider in this `fleetplane local` environment (name or folder).",
    ),
    aws_region: str = typer.Option(None, "--aws-region", help="Serve the `aws` provider (EKS) here."),
    aws_endpoint: str = typer.Option(None, "--aws-endpoint", help="Another AWS endpoint (a test server)."),
    inventory_namespace: str = typer.Option("argocd", help="Namespace of the hub's Argo CD cluster Secrets."),
    resync: float = typer.Option(30.0, help="Seconds between periodic passes over each claim and composite."),
    drain: float = typer.Option(120.0, help="Seconds a deletion waits for a live agent to remove its works."),
    liveness: str = typer.Option("", help="Serve kopf's liveness probe, e.g. http://0.0.0.0:8080/healthz."),
    log_level: str = typer.Option("warning", "--log-level", help="debug, info, warning or error."),
) -> None:
    """Reconcile definitions, compositions, claims and composites until interrupted."""
    logs.configure(log_level)
    operator.run(
        operator.ProvisionerSettings(
            kubeconfig=kubeconfig or None,
            maestro=maestro,
            kafka=kafka,
            topic_prefix=topic_prefix,
            local_env=_environment(local_env),
            aws_region=aws_region,
            aws_endpoint=aws_endpoint,
            inventory_namespace=inventory_namespace,
            resync_seconds=resync,
            drain_seconds=drain,
            liveness=liveness or None,
        )
    )


def _environment(name_or_folder: str | None) -> Path | None:
    if not name_or_folder:
        return None
    return Path(name_or_folder) if "/" in name_or_folder else Environment.named(name_or_folder).root


@app.command()
def install(
    kubeconfig: str = KUBECONFIG,
    inventory_namespace: str = typer.Option("argocd", help="Namespace of the hub's Argo CD cluster Secrets."),
    folder: Path = typer.Option(
        operator.COMPOSITIONS_DIR / "worker-cluster",
        help="Holds definition.yaml, composition.yaml.",
    ),
) -> None:
    """Serve the provisioner's CRDs, create the inventory namespace, and apply a composition
    folder's definition and Composition."""
    asyncio.run(_install(kubeconfig or None, folder, inventory_namespace))
    typer.echo(f"installed the provisioner's CRDs and {folder.name}")


async def _install(kubeconfig: str | None, folder: Path, inventory_namespace: str) -> None:
    rest = KubeRest.from_kubeconfig(kubeconfig)
    try:
        await operator.install(objects.Objects(rest), folder, inventory_namespace)
    finally:
        await rest.close()
