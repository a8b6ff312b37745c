"""How the ``fleetplane maestro`` commands that call a server reach it.

Every such command takes the same four options after its own (``--server``, ``--tls-dir``,
``--token-file``, ``--insecure``). ``connected`` adds them to a command's signature and hands the
command one ``Connection`` instead, so the options are declared once and stay where users put them
(after the subcommand).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from fleetplane import tls_options
from maestro import client_errors
from maestro.client import MaestroClient

T = TypeVar("T")
err = Console(stderr=True)

SERVER = typer.Option("127.0.0.1:8090", "--server", envvar="MAESTRO_SERVER", help="Maestro gRPC address.")
# What the CLI names itself as a source; its reads and admin calls do not publish.
CLI_SOURCE = "fleetplane-cli"
TIMEOUT_SECONDS = 60


@dataclasses.dataclass(frozen=True)
class Connection:
    server: str
    tls_dir: str | None
    token_file: str | None
    insecure: bool

    def call(self, call: Callable[[MaestroClient], Awaitable[T]]) -> T:
        """Run ``call`` with a client of the server; a refusal is printed and exits 1."""
        credentials = tls_options.credentials(self.tls_dir, self.token_file, self.insecure)

        async def run() -> T:
            async with MaestroClient(self.server, source=CLI_SOURCE, credentials=credentials) as client:
                async with asyncio.timeout(TIMEOUT_SECONDS):
                    return await call(client)

        try:
            return asyncio.run(run())
        except client_errors.MaestroCallError as exc:
            err.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from None
        except TimeoutError:
            err.print(f"[red]error:[/red] Maestro at {self.server} did not answer within {TIMEOUT_SECONDS}s")
            raise typer.Exit(1) from None


# (name, annotation, typer default): what `connected` adds to a command, in this order.
_OPTIONS: tuple[tuple[str, Any, Any], ...] = (
    ("server", str, SERVER),
    ("tls_dir", str, tls_options.TLS_DIR),
    ("token_file", str, tls_options.TOKEN_FILE),
    ("insecure", bool, tls_options.INSECURE),
)


def connected(command: Callable[..., T]) -> Callable[..., T]:
    """The command with the connection options in place of its ``connection: Connection``."""
    signature = inspect.signature(command)
    own = [p for name, p in signature.parameters.items() if name != "connection"]
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
        for name, annotation, default in _OPTIONS
    ]
    # Typer reads the parameters' types from the annotations; the command's own are strings
    # (postponed evaluation), so they are resolved here, where the command's module is loaded.
    hints = {k: v for k, v in inspect.get_annotations(command, eval_str=True).items() if k != "connection"}

    @functools.wraps(command)
    def with_connection(
        *args: Any, server: str, tls_dir: str, token_file: str, insecure: bool, **kwargs: Any
    ) -> T:
        return command(*args, connection=Connection(server, tls_dir, token_file, insecure), **kwargs)

    with_connection.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[*own, *added]
    )
    with_connection.__annotations__ = {**hints, **{name: annotation for name, annotation, _ in _OPTIONS}}
    return with_connection
