"""``fleetplane controllers run``: its options reach the operator's settings."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from controllers import operator
from fleetplane.cli import app


def test_status_write_options_reach_the_status_controller(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[operator.OperatorSettings] = []
    monkeypatch.setattr(operator, "run", started.append)
    args = ["controllers", "run", "--maestro", "m:1", "--write-rate", "500", "--write-concurrency", "48"]
    args += ["--mirror-status-wait", "2.5", "--rollup-bytes", "65536", "--targets-in-flight", "99"]

    result = CliRunner().invoke(app, args)

    assert result.exit_code == 0, result.output
    (settings,) = started
    assert (settings.status.write_rate, settings.status.write_burst) == (500.0, 400)
    assert settings.status.write_concurrency == 48
    assert settings.maestro == "m:1"
    assert settings.propagation.mirror_status_seconds == 2.5
    assert settings.status.rollup_bytes_per_second == 65536
    assert settings.propagation.targets_in_flight == 99


def test_write_concurrency_below_one_is_refused_naming_the_option() -> None:
    result = CliRunner().invoke(app, ["controllers", "run", "--write-concurrency", "0"])

    assert result.exit_code == 2
    assert "--write-concurrency" in result.output
