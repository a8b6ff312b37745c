"""The leader-election options of the operators (``controllers run``, ``provisioner run``).

Named as Kubernetes' own components name them (kube-controller-manager, controller-runtime based
operators): ``--leader-elect`` (on by default), ``--leader-elect-lease-duration``,
``--leader-elect-renew-deadline``, ``--leader-elect-retry-period``,
``--leader-elect-resource-name`` and ``--leader-elect-resource-namespace``.
"""

from __future__ import annotations

from typing import Any

import typer

from kubeio import lease
from kubeio import liveness as liveness_endpoint
from kubeio.kubeconfig import Kubeconfig
from kubeio.leader import Election

_DEFAULTS = lease.LeaderElection(name="defaults", namespace="defaults", identity="defaults")

LIVENESS = typer.Option(
    "",
    help='Serve a liveness endpoint answering {"leader": true|false} (leader and standbys alike), '
    "e.g. http://0.0.0.0:8081/healthz; --health-port serves /healthz and /readyz, which the charts probe.",
)
LEADER_ELECT = typer.Option(
    True,
    "--leader-elect/--no-leader-elect",
    help="Elect one leader among this operator's replicas on a coordination.k8s.io Lease: only the "
    "leader runs handlers, the others stand by and take over when its lease runs out (at once when "
    "it stops cleanly). --no-leader-elect starts handling at once: only for a single replica.",
)
RESOURCE_NAMESPACE = typer.Option(
    "",
    "--leader-elect-resource-namespace",
    help="Namespace of the Lease. Default: the kubeconfig context's namespace; in a pod, the pod's; "
    "else default.",
    show_default=False,
)
LEASE_DURATION = typer.Option(
    _DEFAULTS.lease_duration,
    "--leader-elect-lease-duration",
    help="Seconds standbys wait, from when they last saw the Lease renewed, before taking it over.",
)
RENEW_DEADLINE = typer.Option(
    _DEFAULTS.renew_deadline,
    "--leader-elect-renew-deadline",
    help="Seconds the leader keeps trying to renew before it stops leading (the process exits, to "
    "restart as a standby). Shorter than the lease duration: the difference is the margin by which a "
    "leader cut off from the API server stops before a standby may take over.",
)
RETRY_PERIOD = typer.Option(
    _DEFAULTS.retry_period,
    "--leader-elect-retry-period",
    help="Seconds between the leader's renewals and between the standbys' tries.",
)


def resource_name(default: str) -> Any:
    """``--leader-elect-resource-name``: the Lease's name, ``default`` unless given."""
    return typer.Option(
        default,
        "--leader-elect-resource-name",
        help="Name of the Lease the replicas compete for (one per operator and hub).",
    )


#: a setting's field -> the option that sets it
_FLAGS = {
    "name": "--leader-elect-resource-name",
    "namespace": "--leader-elect-resource-namespace",
    "lease_duration": "--leader-elect-lease-duration",
    "renew_deadline": "--leader-elect-renew-deadline",
    "retry_period": "--leader-elect-retry-period",
}


def election(
    enabled: bool,
    config: Kubeconfig,
    kubeconfig_file: str | None,
    *,
    name: str,
    namespace: str,
    lease_duration: int,
    renew_deadline: float,
    retry_period: float,
) -> Election | None:
    """The options' election (None with ``--no-leader-elect``), or a usage error naming the option
    that cannot work and how to fix it."""
    if not enabled:
        return None
    try:
        settings = lease.LeaderElection(
            name=name,
            namespace=namespace or config.namespace,
            lease_duration=lease_duration,
            renew_deadline=renew_deadline,
            retry_period=retry_period,
        )
    except lease.SettingsError as exc:
        raise typer.BadParameter(str(exc), param_hint=f"'{_FLAGS.get(exc.field, exc.field)}'") from None
    return Election(settings, kubeconfig_file)


def liveness(endpoint: str) -> str | None:
    """``--liveness`` checked (None when not given), or a usage error saying what to give."""
    if not endpoint:
        return None
    try:
        liveness_endpoint.address(endpoint)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--liveness'") from None
    return endpoint
