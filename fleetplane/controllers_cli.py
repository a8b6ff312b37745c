"""``fleetplane controllers``: run the hub controllers (ApplicationSet propagation, status aggregation)."""

from __future__ import annotations

import typer

from controllers import operator
from controllers.propagation import handlers as propagation
from controllers.status import handlers as status
from fleetplane import gc_tuning, logs

app = typer.Typer(help="The hub controllers: ApplicationSets out through Maestro, status back.")


@app.callback()
def _group() -> None:
    """Keeps ``run`` a named subcommand (typer folds a lone command into its group)."""


@app.command()
def run(
    kubeconfig: str = typer.Option(
        None, "--kubeconfig", envvar="KUBECONFIG", help="Kubeconfig of the hub (default: in-cluster)."
    ),
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
    liveness: str = typer.Option("", help="Serve kopf's liveness probe, e.g. http://0.0.0.0:8080/healthz."),
    log_level: str = typer.Option("warning", "--log-level", help="debug, info, warning or error."),
) -> None:
    """Watch opted-in ApplicationSets (label fleetplane.io/pull=true) and serve them through Maestro."""
    logs.configure(log_level)
    gc_tuning.tune()
    settings = operator.OperatorSettings(
        kubeconfig=kubeconfig or None,
        maestro=maestro,
        propagation=propagation.PropagationSettings(
            inventory_namespace=inventory_namespace,
            resync_seconds=resync,
            mirror_status_seconds=mirror_status_wait,
            targets_in_flight=targets_in_flight,
        ),
        status=status.StatusSettings(
            list_seconds=status_list,
            write_rate=write_rate,
            write_burst=write_burst,
            write_concurrency=write_concurrency,
            rollup_bytes_per_second=rollup_bytes,
        ),
        liveness=liveness or None,
    )
    operator.run(settings)
