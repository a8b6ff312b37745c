"""The Crossplane v2 spellings (``composition render``, ``resource trace``) of ``render`` and
``trace``."""

from __future__ import annotations

import typer

from fleetplane import inspect_cli, render_cli

composition_app = typer.Typer(help="Compositions: render a claim through one.", no_args_is_help=True)
resource_app = typer.Typer(help="Claims and composites: trace one.", no_args_is_help=True)
composition_app.command("render")(render_cli.render_claim)
resource_app.command("trace")(inspect_cli.trace_command)


@composition_app.callback()
def _composition() -> None:
    """Compositions: ``render`` is ``fleetplane render`` under Crossplane v2's name."""


@resource_app.callback()
def _resource() -> None:
    """Claims and composites: ``trace`` is ``fleetplane trace`` under Crossplane v2's name."""
