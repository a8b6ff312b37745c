"""``--health-port``/``--health-host`` and ``--metrics-port``/``--metrics-host``: the plain HTTP
ports a long-running process serves for the kubelet's probes and Prometheus (``kubeio.probes``).

Off unless a port is given; on loopback unless a host is, so that nothing listens on a
network a user did not choose.
"""

from __future__ import annotations

from typing import Any

import typer

from kubeio.probes import LOOPBACK


def health_port_option(ready: str) -> Any:
    """``--health-port``, its help saying what ``ready`` means for this process."""
    return typer.Option(
        None,
        "--health-port",
        help=f"Serve plain HTTP /healthz (liveness) and /readyz (readiness: {ready}; 503 naming what "
        "is wrong) on this port; default: not at all.",
        show_default=False,
    )


def metrics_port_option(what: str) -> Any:
    """``--metrics-port``, its help naming ``what`` is measured."""
    return typer.Option(
        None,
        "--metrics-port",
        help=f"Serve Prometheus metrics ({what}) as plain HTTP /metrics on this port; default: not at all.",
        show_default=False,
    )


HEALTH_HOST = typer.Option(LOOPBACK, "--health-host", help="Address of the health port.")
METRICS_HOST = typer.Option(LOOPBACK, "--metrics-host", help="Address of the metrics port.")
