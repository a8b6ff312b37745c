"""What the ``fleetplane`` command itself answers: its version and its shell completion script."""

from __future__ import annotations

import importlib.metadata

import typer
import typer.completion


def version_text() -> str:
    return f"fleetplane {importlib.metadata.version('fleetplane')}"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(version_text())
        raise typer.Exit()


def root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print fleetplane's version and exit.",
    ),
) -> None:
    """The ``fleetplane`` command's own options; each subcommand does its work."""


def version_command() -> None:
    """Print fleetplane's version (the installed package's)."""
    typer.echo(version_text())


def completion_command(
    shell: typer.completion.Shells = typer.Argument(..., help="The shell: bash, zsh, fish or powershell."),
) -> None:
    """Print the completion script for SHELL, e.g. `source <(fleetplane completion bash)` in
    ~/.bashrc (or let `fleetplane --install-completion` add it for the current shell)."""
    typer.echo(
        typer.completion.get_completion_script(
            prog_name="fleetplane", complete_var="_FLEETPLANE_COMPLETE", shell=shell.value
        )
    )
