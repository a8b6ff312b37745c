"""``fleetplane controllers``: run the hub controllers (ApplicationSet propagation, status aggregation)."""

from __future__ import annotations

from pathlib import Path

import typer

from controllers import argocd_cache, operator
from controllers.propagation import settings as propagation
from controllers.status import controller as status
from fleetplane import gc_tuning, kube_options, leader_options, logs, probe_options, tls_options
from trust import files

app = typer.Typer(help="The hub controllers: ApplicationSets out through Maestro, status back.")
KUBECONFIG = kube_options.kubeconfig_option("the hub")


@app.callback()
def _group() -> None:
    """Keeps ``run`` a named subcommand (typer folds a lone command into its group)."""


@app.command()
def run(
    kubeconfig: str | None = KUBECONFIG,
    context: str | None = kube_options.CONTEXT,
    maestro: str = typer.Option(
        "127.0.0.1:8090", "--maestro", envvar="MAESTRO_SERVER", help="Maestro gRPC address."
    ),
    inventory_namespace: str = typer.Option(
        propagation.PropagationSettings.inventory_namespace,
        help="Namespace of the hub's Argo CD cluster Secrets (the inventory).",
    ),
    resync: float = typer.Option(
        propagation.PropagationSettings.resync_seconds,
        help="Seconds between passes over each ApplicationSet, and between sweeps for orphaned works "
        "(a sweep that takes long waits longer: it stays under 5% of the time).",
    ),
    status_list: float = typer.Option(
        status.StatusSettings.list_seconds,
        help="Seconds between full status lists (the watch's safety net; a list that takes long waits "
        "longer: it stays under 5% of the time).",
    ),
    write_rate: float = typer.Option(status.StatusSettings.write_rate, help="Hub status writes per second."),
    write_burst: int = typer.Option(
        status.StatusSettings.write_burst, help="Hub status writes allowed in a burst."
    ),
    write_concurrency: int = typer.Option(
        status.StatusSettings.write_concurrency,
        min=1,
        help="Hub status writes in flight at once (each has its own connection).",
    ),
    rollup_bytes: float = typer.Option(
        status.StatusSettings.rollup_bytes_per_second,
        min=1.0,
        help="Bytes of ApplicationSet status written per second, over all of them (large "
        "ApplicationSets are rolled up less often while their Applications change).",
    ),
    mirror_status_wait: float = typer.Option(
        propagation.PropagationSettings.mirror_status_seconds,
        min=0.0,
        help="Seconds a hub Application waits, after its work is sent, for its cluster's status, so "
        "both are written at once (0: write it at once and patch the status when it comes).",
    ),
    targets_in_flight: int = typer.Option(
        propagation.PropagationSettings.targets_in_flight,
        min=1,
        help="Targets whose work was sent and whose hub Application is not yet written, over all "
        "ApplicationSets (how far the works may run ahead of the hub).",
    ),
    git_poll: float = typer.Option(
        propagation.PropagationSettings.git_poll_seconds,
        min=1.0,
        help="Seconds before a git generator's repository revision is fetched again.",
    ),
    git_cache_dir: str = typer.Option(
        "",
        help="Folder of the git generator's shallow clones (default: fleetplane-git in the "
        "system's temporary folder).",
    ),
    mirror_max_resources: int = typer.Option(
        status.StatusSettings.max_resources,
        min=1,
        help="Resources a hub Application lists in its status and resource tree; one cut short "
        "says so in a PropagationWarning condition.",
    ),
    argocd_redis: str = typer.Option(
        "",
        help="HOST:PORT of the hub Argo CD's Redis (TLS): each hub Application's resource tree is "
        "written there for argocd-server (default: not written). The client certificate is "
        "--tls-dir's.",
    ),
    argocd_redis_password_file: str = typer.Option(
        "", help="File holding that Redis's password (read at each connection)."
    ),
    argocd_namespace: str = typer.Option(
        "argocd", help="Namespace argocd-server runs in (it names Applications of others NAMESPACE_NAME)."
    ),
    tls_dir: str = tls_options.TLS_DIR,
    token_file: str = tls_options.TOKEN_FILE,
    insecure: bool = tls_options.INSECURE,
    liveness: str = leader_options.LIVENESS,
    leader_elect: bool = leader_options.LEADER_ELECT,
    lease_name: str = leader_options.resource_name("fleetplane-controllers"),
    lease_namespace: str = leader_options.RESOURCE_NAMESPACE,
    lease_duration: int = leader_options.LEASE_DURATION,
    renew_deadline: float = leader_options.RENEW_DEADLINE,
    retry_period: float = leader_options.RETRY_PERIOD,
    health_port: int | None = probe_options.health_port_option(
        "kopf watches ApplicationSets and the inventory, the hub and the Maestro server answer, "
        "the background loops run; a standby is ready and says it stands by"
    ),
    health_host: str = probe_options.HEALTH_HOST,
    metrics_port: int | None = probe_options.metrics_port_option(
        "passes by kind and outcome, works published and deleted, status writes, errors, queues, "
        "whether this replica leads"
    ),
    metrics_host: str = probe_options.METRICS_HOST,
    log_level: str = logs.LEVEL,
    log_format: logs.Format = logs.FORMAT,
) -> None:
    """Watch opted-in ApplicationSets (label fleetplane.io/pull=true) and serve them through Maestro."""
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
    gc_tuning.tune()
    credentials = tls_options.credentials(tls_dir, token_file, insecure)
    trees = _tree_cache(argocd_redis, argocd_redis_password_file, argocd_namespace, tls_dir)
    settings = operator.OperatorSettings(
        kubeconfig=hub_kubeconfig,
        maestro=maestro,
        maestro_credentials=credentials,
        propagation=propagation.PropagationSettings(
            inventory_namespace=inventory_namespace,
            resync_seconds=resync,
            mirror_status_seconds=mirror_status_wait,
            targets_in_flight=targets_in_flight,
            git_poll_seconds=git_poll,
            git_cache_dir=git_cache_dir or propagation.PropagationSettings().git_cache_dir,
        ),
        status=status.StatusSettings(
            list_seconds=status_list,
            write_rate=write_rate,
            write_burst=write_burst,
            write_concurrency=write_concurrency,
            rollup_bytes_per_second=rollup_bytes,
            max_resources=mirror_max_resources,
        ),
        trees=trees,
        liveness=leader_options.liveness(liveness),
        election=election,
        health_port=health_port,
        health_host=health_host,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
    )
    operator.run(settings)


def _tree_cache(
    address: str, password_file: str, namespace: str, tls_dir: str | None
) -> argocd_cache.TreeCacheSettings | None:
    if not address:
        return None
    if not password_file or not Path(password_file).is_file():
        raise typer.BadParameter(
            f"--argocd-redis-password-file must name the file holding the password of {address} "
            f"(got {password_file or 'nothing'})",
            param_hint="--argocd-redis-password-file",
        )
    if not tls_dir:
        raise typer.BadParameter(
            "--argocd-redis needs --tls-dir: Redis takes TLS with a client certificate of the platform's CA",
            param_hint="--tls-dir",
        )
    tls = files.read_tls_folder(Path(tls_dir), identity=True)
    return argocd_cache.TreeCacheSettings(address, Path(password_file), tls, namespace)
