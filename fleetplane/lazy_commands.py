"""A command group whose subcommands are imported when first used.

Each container image carries only its role's libraries (the server's PostgreSQL driver, the hub's
kopf, ...), so ``fleetplane --version`` or ``fleetplane maestro agent`` must not import the other
roles' subcommands. A subcommand whose libraries are missing still answers, with the extra that
installs them.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

import typer
import typer.core
import typer.main

# typer carries its own copy of click: its groups and commands are of these classes
from typer import _click as click


@dataclasses.dataclass(frozen=True)
class Lazy:
    """Where a subcommand lives (``module:attribute``, a Typer app or a command function) and the
    package extra that installs its libraries."""

    target: str
    extra: str

    def load(self) -> Any:
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module), attribute)


# The subcommands, in the order help lists them.
LAZY: dict[str, Lazy] = {
    "local": Lazy("fleetplane.local_cli:app", "dev"),
    "maestro": Lazy("fleetplane.maestro_cli:app", "server"),
    "bench": Lazy("fleetplane.bench_cli:app", "dev"),
    "controllers": Lazy("fleetplane.controllers_cli:app", "hub"),
    "provisioner": Lazy("fleetplane.provisioner_cli:app", "hub"),
    "demo": Lazy("fleetplane.local_cli:demo", "dev"),
    "trace": Lazy("fleetplane.inspect_cli:trace_command", "hub"),
    "diff": Lazy("fleetplane.inspect_cli:diff_command", "hub"),
    "render": Lazy("fleetplane.render_cli:render_claim", "hub"),
    "composition": Lazy("fleetplane.crossplane_cli:composition_app", "hub"),
    "resource": Lazy("fleetplane.crossplane_cli:resource_app", "hub"),
}


# fleetplane's own packages: a module of theirs that fails to import is a bug to show, not an extra
# to install
_OWN_PACKAGES = frozenset(
    {"fleetplane", "trust", "localinfra", "kubeio", "maestro", "controllers", "provisioner", "bootstrap"}
)


def _command(name: str, loaded: Any, **settings: bool) -> click.Command:
    if isinstance(loaded, typer.Typer):
        command = typer.main.get_command(loaded)
    else:
        single = typer.Typer()
        single.command(name, context_settings=settings)(loaded)
        command = typer.main.get_command(single)
    command.name = name
    return command


def _missing(name: str, lazy: Lazy, exc: ImportError) -> click.Command:
    hint = f"needs the `{lazy.extra}` extra, which this installation lacks (no module {exc.name!r})"

    def refuse() -> None:
        typer.echo(f"error: `fleetplane {name}` {hint}: pip install 'fleetplane[{lazy.extra}]'", err=True)
        raise typer.Exit(1)

    refuse.__doc__ = f"Not installed: {hint}."
    # whatever follows (``controllers run ...``) gets the same answer
    return _command(name, refuse, allow_extra_args=True, ignore_unknown_options=True)


class LazyGroup(typer.core.TyperGroup):
    """Lists :data:`LAZY`, then the commands registered in place, and imports one on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*LAZY, *(name for name in super().list_commands(ctx) if name not in LAZY)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in LAZY:
            lazy = LAZY[cmd_name]
            try:
                self.commands[cmd_name] = _command(cmd_name, lazy.load())
            except ImportError as exc:
                if (exc.name or "").partition(".")[0] in _OWN_PACKAGES:
                    raise
                return _missing(cmd_name, lazy, exc)
        return super().get_command(ctx, cmd_name)
