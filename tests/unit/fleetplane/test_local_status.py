"""``fleetplane local status``'s output: endpoints and processes as tables, or one record as data.

Cases: the table shows each component and process with its state (a dead one as ``dead``) and no
command line, wide adds it; json is one object with the environment, its endpoints and processes;
the count of dead processes (the exit code's reason) is returned.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fleetplane import local_status
from fleetplane.output import Format
from localinfra import fleet

ROWS = [
    {"name": "postgres", "pid": 10, "alive": True, "log": "/l/pg.log", "argv": ["postgres", "-D", "x"]},
    {"name": "kafka", "pid": 11, "alive": False, "log": "/l/kafka.log", "argv": ["java", "kafka"]},
]


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(fleet, "status", lambda _env: ROWS)
    return SimpleNamespace(root=Path("/cache/env"), endpoints={"postgres": {"port": 5432, "host": "h"}})


def test_the_table_shows_states_and_wide_adds_the_command(
    environment: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert local_status.show(environment, Format.TABLE, processes=True) == 1
    out = capsys.readouterr().out
    assert "COMPONENT" in out and "host=h,port=5432" in out
    assert "kafka" in out and "dead" in out and "running" in out and "COMMAND" not in out
    local_status.show(environment, Format.WIDE, processes=True)
    assert "java kafka" in capsys.readouterr().out


def test_json_is_one_record(environment: Any, capsys: pytest.CaptureFixture[str]) -> None:
    local_status.show(environment, Format.JSON, processes=True)
    printed = json.loads(capsys.readouterr().out)
    assert printed["environment"] == "/cache/env"
    assert printed["endpoints"] == [{"component": "postgres", "where": {"port": 5432, "host": "h"}}]
    assert printed["processes"] == ROWS
