"""The connection options every `fleetplane maestro` command that calls a server takes after its own."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from fleetplane.maestro_connection import Connection, connected


def _app(seen: list[tuple[Connection, str, int]]) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    @connected
    def show(connection: Connection, name: str = typer.Argument(...), count: int = 1) -> None:
        seen.append((connection, name, count))

    return app


def test_a_command_gets_its_own_arguments_and_one_connection_from_the_options() -> None:
    seen: list[tuple[Connection, str, int]] = []
    result = CliRunner().invoke(
        _app(seen), ["web", "--count", "3", "--server", "maestro:8090", "--tls-dir", "/tls", "--insecure"]
    )
    assert result.exit_code == 0, result.output
    assert seen == [(Connection("maestro:8090", "/tls", None, True), "web", 3)]


def test_the_server_defaults_and_is_read_from_the_environment() -> None:
    seen: list[tuple[Connection, str, int]] = []
    assert CliRunner().invoke(_app(seen), ["a"]).exit_code == 0
    env = {"MAESTRO_SERVER": "elsewhere:1", "FLEETPLANE_TOKEN_FILE": "/token"}
    assert CliRunner().invoke(_app(seen), ["b"], env=env).exit_code == 0
    assert [c for c, _, _ in seen] == [
        Connection("127.0.0.1:8090", None, None, False),
        Connection("elsewhere:1", None, "/token", False),
    ]


def test_help_lists_the_commands_options_then_the_connections() -> None:
    result = CliRunner().invoke(_app([]), ["--help"], env={"COLUMNS": "200"})
    text = result.output
    assert result.exit_code == 0
    assert text.index("--count") < text.index("--server") < text.index("--tls-dir") < text.index("--insecure")
    assert "MAESTRO_SERVER" in text
