"""The ``fleetplane`` command as a whole: version, shell completion, help on everything, and the
Crossplane v2 spellings of ``render`` and ``trace``.

Cases: ``--version`` and ``version`` print the installed package's version; ``--show-completion
bash`` and ``completion bash`` print a bash script, and the script's protocol completes a
subcommand and an ``-o`` value; every command, argument and option has help; ``composition
render`` and ``resource trace`` run the very functions of ``render`` and ``trace``, with the same
output.
"""

from __future__ import annotations

import importlib.metadata
import pathlib
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from fleetplane import crossplane_cli, lazy_commands
from fleetplane.cli import app

from ..provisioner import builders

runner = CliRunner()
VERSION = importlib.metadata.version("fleetplane")


@pytest.mark.parametrize("args", [["--version"], ["version"]])
def test_version(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"fleetplane {VERSION}"


def test_show_completion_prints_a_bash_script(monkeypatch: pytest.MonkeyPatch) -> None:
    # Without this, typer detects the shell it runs under and takes no shell name.
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    result = runner.invoke(app, ["--show-completion", "bash"], prog_name="fleetplane")
    assert result.exit_code == 0, result.output
    assert "complete -o default -F _fleetplane_completion fleetplane" in result.output
    assert "_FLEETPLANE_COMPLETE=complete_bash" in result.output


@pytest.mark.parametrize(
    ("shell", "marker"), [("bash", "complete -o default"), ("zsh", "#compdef fleetplane")]
)
def test_completion_prints_the_named_shells_script(shell: str, marker: str) -> None:
    result = runner.invoke(app, ["completion", shell])
    assert result.exit_code == 0, result.output
    assert marker in result.output


@pytest.mark.parametrize(
    ("words", "want"),
    [
        ("fleetplane loc", {"local"}),
        ("fleetplane maestro consumers list -o ", {"table", "wide", "yaml", "json"}),
    ],
)
def test_the_completion_protocol_completes(words: str, want: set[str]) -> None:
    env = {
        "_FLEETPLANE_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split())),
    }
    if not words.endswith(" "):
        env["COMP_CWORD"] = str(len(words.split()) - 1)
    result = runner.invoke(app, [], prog_name="fleetplane", env=env)
    assert set(result.output.split()) == want


def _commands(command: Any, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, command)]
    if isinstance(command, typer.core.TyperGroup):
        # through get_command: the group imports its subcommands when first asked for them
        ctx = typer.Context(command)
        for name in command.list_commands(ctx):
            found += _commands(command.get_command(ctx, name), (*path, name))
    return found


def test_every_command_and_option_has_help() -> None:
    commands = _commands(typer.main.get_command(app), ("fleetplane",))
    assert len(commands) > 30
    missing = [" ".join(path) for path, command in commands if not (command.help or "").strip()]
    missing += [
        f"{' '.join(path)} {param.name}"
        for path, command in commands
        for param in command.params
        if not (getattr(param, "help", None) or "").strip()
    ]
    assert missing == []


def test_composition_render_is_render(tmp_path: pathlib.Path) -> None:
    claim = tmp_path / "claim.yaml"
    claim.write_text(yaml.safe_dump(builders.claim()))
    args = [str(claim), "--argocd-install", str(builders.ARGOCD_INSTALL)]
    plain = runner.invoke(app, ["render", *args])
    spelled = runner.invoke(app, ["composition", "render", *args])
    assert plain.exit_code == spelled.exit_code == 0, spelled.output
    assert spelled.output == plain.output and "# 0 provider cluster" in plain.output


def _registered(group: typer.Typer, name: str) -> Any:
    """The function a group runs for its command ``name`` (as registered, before typer wraps it)."""
    (callback,) = [c.callback for c in group.registered_commands if c.name == name]
    return callback


def test_resource_trace_is_trace() -> None:
    assert lazy_commands.LAZY["trace"].load() is _registered(crossplane_cli.resource_app, "trace")
    assert lazy_commands.LAZY["render"].load() is _registered(crossplane_cli.composition_app, "render")
    plain = runner.invoke(app, ["trace", "not-a-ref"])
    spelled = runner.invoke(app, ["resource", "trace", "not-a-ref"])
    assert plain.exit_code == spelled.exit_code == 2
    assert spelled.output == plain.output and "is not KIND/NAME" in plain.output
