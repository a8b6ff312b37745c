"""The options every fleetplane process that calls Maestro takes to say who it is.

``--tls-dir`` (``FLEETPLANE_TLS_DIR``): a folder with ``ca.crt``, ``tls.crt`` and ``tls.key``, the
layout of a mounted Kubernetes TLS Secret (the pair may be left out when a token authenticates);
``--token-file`` (``FLEETPLANE_TOKEN_FILE``): a Kubernetes token of the hub, re-read when it
changes; ``--insecure``: plaintext, to a server started with ``--insecure``.
"""

from __future__ import annotations

import typer
from rich.console import Console

from maestro.client import Credentials, CredentialsError

TLS_DIR = typer.Option(
    None,
    "--tls-dir",
    envvar="FLEETPLANE_TLS_DIR",
    help="Folder with ca.crt, tls.crt and tls.key (a mounted TLS Secret): this process's identity.",
)
TOKEN_FILE = typer.Option(
    None,
    "--token-file",
    envvar="FLEETPLANE_TOKEN_FILE",
    help="A Kubernetes token of the hub, sent instead of a certificate (to the server's token port); "
    "--tls-dir then needs only ca.crt.",
)
INSECURE = typer.Option(
    False, "--insecure", help="Plaintext, no credentials: only for a server started with --insecure."
)


def credentials(tls_dir: str | None, token_file: str | None, insecure: bool) -> Credentials:
    """The options' credentials, or the command stopped with what to give instead."""
    try:
        return Credentials.from_options(tls_dir, token_file, insecure)
    except CredentialsError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
