"""Subcommands imported on first use: a library that is not installed turns the subcommand into one
that names the extra to install; a module of fleetplane's own that fails to import is raised.

Cases: ``--version`` imports no subcommand; a subcommand whose library is missing shows that in
its help, and running it (with any arguments) exits 1 naming the extra; a broken import of one of
fleetplane's own modules is not mistaken for a missing extra.
"""

from __future__ import annotations

import sys
import types

import pytest
from typer.testing import CliRunner

from fleetplane import lazy_commands
from fleetplane.cli import app

runner = CliRunner()


@pytest.fixture
def role_without_its_library(monkeypatch: pytest.MonkeyPatch) -> str:
    """A subcommand module that imports a library this installation lacks."""
    module = types.ModuleType("fleetplane_test_role")

    def import_it() -> None:
        import fleetplane_absent_library  # type: ignore[import-not-found]  # noqa: F401

    monkeypatch.setitem(sys.modules, "fleetplane_test_role", module)
    monkeypatch.setattr(module, "__getattr__", lambda _: import_it(), raising=False)
    monkeypatch.setitem(lazy_commands.LAZY, "role", lazy_commands.Lazy("fleetplane_test_role:app", "hub"))
    return "role"


def test_version_imports_no_subcommand(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(lazy_commands.LAZY, "broken", lazy_commands.Lazy("fleetplane_no_such:app", "hub"))
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("fleetplane ")


def test_a_missing_library_names_the_extra(role_without_its_library: str) -> None:
    helped = runner.invoke(app, [role_without_its_library, "run", "--help"])
    assert helped.exit_code == 0 and "Not installed" in helped.output and "hub" in helped.output
    refused = runner.invoke(app, [role_without_its_library, "run", "--flag", "x"])
    assert refused.exit_code == 1
    assert "pip install 'fleetplane[hub]'" in refused.output
    assert "fleetplane_absent_library" in refused.output


def test_a_broken_own_module_is_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        lazy_commands.LAZY, "broken", lazy_commands.Lazy("maestro.no_such_module:app", "server")
    )
    result = runner.invoke(app, ["broken", "--help"])
    assert isinstance(result.exception, ModuleNotFoundError)
    assert result.exception.name == "maestro.no_such_module"
