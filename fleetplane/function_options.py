"""Options naming the composition function servers a pipeline may call, shared by
``fleetplane provisioner run`` and ``fleetplane render``."""

from __future__ import annotations

from pathlib import Path

import typer

FUNCTIONS: list[str] = typer.Option(
    [],
    "--function",
    help="A composition function server, NAME=HOST:PORT, speaking Crossplane's RunFunction gRPC protocol; "
    "Pipeline Compositions call it by NAME. Repeat for more.",
)
FUNCTION_TLS_DIR: Path | None = typer.Option(
    None,
    "--function-tls-dir",
    help="mTLS to the function servers: ca.crt (verifies them), tls.crt and tls.key (this client's). "
    "Without it the calls are plaintext: keep such servers on loopback.",
)
