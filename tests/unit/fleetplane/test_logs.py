"""Every process's log lines: key=value text by default, one JSON object a line with
``--log-format json`` (its traceback one string field), as the CLI's flags set them."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from fleetplane import cli, logs


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_text_is_key_value_lines(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("info")
    logging.getLogger("maestro.server.relay").info("relayed %d events", 3)
    line = capsys.readouterr().err.strip()
    assert line.startswith("timestamp=")
    assert "level='info' logger='maestro.server.relay' event='relayed 3 events'" in line


def test_json_is_one_object_a_line_with_its_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("warning", logs.Format.json)
    logging.getLogger("maestro.server.app").info("not shown")
    try:
        raise RuntimeError("broker gone")
    except RuntimeError:
        logging.getLogger("maestro.server.app").exception("loop %s stopped", "outbox-relay")
    (line,) = capsys.readouterr().err.splitlines()
    record = json.loads(line)
    assert {k: record[k] for k in ("level", "logger", "event")} == {
        "level": "error",
        "logger": "maestro.server.app",
        "event": "loop outbox-relay stopped",
    }
    assert "RuntimeError: broker gone" in record["exception"] and "timestamp" in record


@pytest.mark.parametrize(
    "command",
    [
        ["maestro", "migrate"],
        ["maestro", "server"],
        ["maestro", "agent"],
        ["controllers", "run"],
        ["provisioner", "run"],
    ],
)
def test_every_process_takes_the_log_format(command: list[str]) -> None:
    result = CliRunner().invoke(cli.app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "--log-format" in result.output
