"""The ``fleetplane`` command. It only wires subcommands; each lives with the package it drives."""

from __future__ import annotations

import typer

from fleetplane import (
    bench_cli,
    controllers_cli,
    inspect_cli,
    local_cli,
    maestro_cli,
    provisioner_cli,
    render_cli,
)

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
app.add_typer(local_cli.app, name="local")
app.add_typer(maestro_cli.app, name="maestro")
app.add_typer(bench_cli.app, name="bench")
app.add_typer(controllers_cli.app, name="controllers")
app.add_typer(provisioner_cli.app, name="provisioner")
app.command("demo")(local_cli.demo)
app.command("trace")(inspect_cli.trace_command)
app.command("diff")(inspect_cli.diff_command)
app.command("render")(render_cli.render_claim)

if __name__ == "__main__":
    app()
