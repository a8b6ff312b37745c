"""``fleetplane local hub-ui`` refuses an ``--argo-ui-dir`` (or ``ARGO_UI_DIR``) that holds no argo-ui
sources before it builds anything, saying which option is wrong and what it should point at."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from fleetplane.cli import app

runner = CliRunner()


def test_a_folder_without_argo_ui_is_refused_before_building(tmp_path: Path) -> None:
    result = runner.invoke(app, ["local", "hub-ui", "--argo-ui-dir", str(tmp_path)])
    assert result.exit_code == 1
    # The console wraps at the terminal's width, wherever a long path puts the breaks.
    said = " ".join(result.output.split())
    assert "--argo-ui-dir" in said
    assert "holds no argo-ui sources" in said


def test_the_environment_variable_is_the_option(tmp_path: Path) -> None:
    result = runner.invoke(app, ["local", "hub-ui"], env={"ARGO_UI_DIR": str(tmp_path)})
    assert result.exit_code == 1
    assert str(tmp_path) in result.output.replace("\n", "")
