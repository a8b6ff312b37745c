"""The ``fleetplane`` command. It only wires subcommands; each lives with the package it drives and
is imported when used (:mod:`fleetplane.lazy_commands`)."""

from __future__ import annotations

import typer

from fleetplane import lazy_commands, root_options

app = typer.Typer(
    cls=lazy_commands.LazyGroup,
    help="Provision Kubernetes clusters from claims (Crossplane style) and carry Argo CD applications "
    "to them through Maestro.",
    no_args_is_help=True,
)
app.callback()(root_options.root)
app.command("version")(root_options.version_command)
app.command("completion")(root_options.completion_command)

if __name__ == "__main__":
    app()
