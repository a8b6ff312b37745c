"""``fleetplane provisioner``: run the claim/composite/composition operator, install its CRDs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from fleetplane import function_options, kube_options, leader_options, logs, probe_options, tls_options
from kubeio import objects
from kubeio.kubeconfig import Kubeconfig
from localinfra import tuning
from localinfra.environment import Environment
from maestro.transport import layout
from provisioner import operator

app = typer.Typer(help="Claims -> composites -> worker clusters with Argo CD and a Maestro agent.")

KUBECONFIG = kube_options.kubeconfig_option("the management cluster")


@app.callback()
def _group() -> None:
    """Keeps the subcommands named."""


@app.command()
def run(
    kubeconfig: str | None = KUBECONFIG,
    context: str | None = kube_options.CONTEXT,
    maestro: str = typer.Option(
        "127.0.0.1:8090", "--maestro", envvar="MAESTRO_SERVER", help="The Maestro server's gRPC address."
    ),
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
    local_tuning: str = typer.Option(
        tuning.TUNED.name,
        "--local-tuning",
        help="What the `local` provider's worker clusters run with: `tuned` (GOGC=50, "
        "fewer Argo CD workers; docs/local-fleet.md) or `untuned` (each component's defaults).",
    ),
    aws_region: str = typer.Option(None, "--aws-region", help="Serve the `aws` provider (EKS) here."),
    aws_endpoint: str = typer.Option(None, "--aws-endpoint", help="Another AWS endpoint (a test server)."),
    simulated: bool = typer.Option(
        False,
        "--simulated",
        help="Serve the `simulated` provider: clusters that exist only in this process's memory, "
        "for benchmarks and tests of the provisioner itself (everything else stays real).",
    ),
    inventory_namespace: str = typer.Option("argocd", help="Namespace of the hub's Argo CD cluster Secrets."),
    resync: float = typer.Option(30.0, help="Seconds between periodic passes over each claim and composite."),
    drain: float = typer.Option(
        120.0,
        help="Seconds a deletion waits for a live agent to remove its works (and Argo CD its "
        "Applications); then the works are left to Maestro's --deletion-grace.",
    ),
    tls_dir: str = tls_options.TLS_DIR,
    token_file: str = tls_options.TOKEN_FILE,
    insecure: bool = tls_options.INSECURE,
    ca_dir: Path = typer.Option(
        None,
        "--ca-dir",
        envvar="FLEETPLANE_CA_DIR",
        help="The platform CA (ca.crt, ca.key) that issues each cluster's agent certificate; "
        "default: the local environment's.",
    ),
    functions: list[str] = function_options.FUNCTIONS,
    function_tls_dir: Path | None = function_options.FUNCTION_TLS_DIR,
    liveness: str = leader_options.LIVENESS,
    leader_elect: bool = leader_options.LEADER_ELECT,
    lease_name: str = leader_options.resource_name("fleetplane-provisioner"),
    lease_namespace: str = leader_options.RESOURCE_NAMESPACE,
    lease_duration: int = leader_options.LEASE_DURATION,
    renew_deadline: float = leader_options.RENEW_DEADLINE,
    retry_period: float = leader_options.RETRY_PERIOD,
    health_port: int | None = probe_options.health_port_option(
        "its CRDs installed, kopf watches definitions and compositions, the management cluster "
        "answers; a standby is ready and says it stands by"
    ),
    health_host: str = probe_options.HEALTH_HOST,
    metrics_port: int | None = probe_options.metrics_port_option(
        "passes by kind and outcome, clusters by state, errors, whether this replica leads"
    ),
    metrics_host: str = probe_options.METRICS_HOST,
    log_level: str = logs.LEVEL,
    log_format: logs.Format = logs.FORMAT,
) -> None:
    """Reconcile definitions, compositions, claims and composites until interrupted."""
    config = kube_options.load(kubeconfig, context)
    hub_kubeconfig = kube_options.single_file(config)
    election = leader_options.election(
        leader_elect,
        config,
        hub_kubeconfig,
        name=lease_name,
        namespace=lease_namespace,
        lease_duration=lease_duration,
        renew_deadline=renew_deadline,
        retry_period=retry_period,
    )
    logs.configure(log_level, log_format)
    credentials = tls_options.credentials(tls_dir, token_file, insecure)
    try:
        worker_tuning = tuning.by_name(local_tuning)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--local-tuning") from exc
    operator.run(
        operator.ProvisionerSettings(
            kubeconfig=hub_kubeconfig,
            maestro=maestro,
            kafka=kafka,
            maestro_credentials=credentials,
            topic_prefix=topic_prefix,
            local_env=_environment(local_env),
            local_tuning=worker_tuning,
            aws_region=aws_region,
            aws_endpoint=aws_endpoint,
            simulated=simulated,
            inventory_namespace=inventory_namespace,
            resync_seconds=resync,
            drain_seconds=drain,
            liveness=leader_options.liveness(liveness),
            health_port=health_port,
            health_host=health_host,
            metrics_port=metrics_port,
            metrics_host=metrics_host,
            ca_dir=ca_dir,
            function_servers=tuple(functions),
            function_tls_dir=function_tls_dir,
            election=election,
        )
    )


def _environment(name_or_folder: str | None) -> Path | None:
    if not name_or_folder:
        return None
    return Path(name_or_folder) if "/" in name_or_folder else Environment.named(name_or_folder).root


@app.command()
def install(
    kubeconfig: str | None = KUBECONFIG,
    context: str | None = kube_options.CONTEXT,
    inventory_namespace: str = typer.Option("argocd", help="Namespace of the hub's Argo CD cluster Secrets."),
    folder: Path = typer.Option(
        operator.COMPOSITIONS_DIR / "worker-cluster",
        help="The composition folder to apply (holds definition.yaml and composition.yaml).",
    ),
) -> None:
    """Serve the provisioner's CRDs, create the inventory namespace, and apply a composition
    folder's definition and Composition."""
    asyncio.run(_install(kube_options.load(kubeconfig, context), folder, inventory_namespace))
    typer.echo(f"installed the provisioner's CRDs and {folder.name}")


async def _install(config: Kubeconfig, folder: Path, inventory_namespace: str) -> None:
    rest = kube_options.rest(config)
    try:
        await operator.install(objects.Objects(rest), folder, inventory_namespace)
    finally:
        await rest.close()
