"""`fleetplane demo --no-hold`, the journey `make demo` shows a new user, run as they run it.

Cases: the command starts the local fleet and the pull pipeline (Maestro server, one agent per
worker, the hub controllers: all processes of the demo's environment), plays the source document's
three ApplicationSet cases and says each passed, exits 0, and leaves no process of its environment
alive and no state behind. The processes are learnt by reading the environment's state file while
the demo runs (it records each one, by pid and start time, when it starts it).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from localinfra import process
from localinfra.environment import Environment

pytestmark = pytest.mark.e2e

DEMO_TIMEOUT = 840.0
PIPELINE = ("maestro/server", "worker-1/maestro-agent", "worker-2/maestro-agent", "hub/controllers")


def recorded(root: Path) -> dict[str, process.ProcessRecord]:
    """The processes the environment's state file lists now (none once ``down`` removed it)."""
    with contextlib.suppress(OSError, ValueError):
        return dict(Environment(root).processes)
    return {}


def test_demo_plays_the_three_cases_and_cleans_up(tmp_path: Path) -> None:
    name = f"e2e-demo-{os.getpid()}"
    root = Environment.named(name).root
    cli = Path(sys.executable).parent / "fleetplane"
    output = tmp_path / "demo.out"
    seen: dict[tuple[int, int], process.ProcessRecord] = {}
    left_in_state: list[str] = []
    with output.open("w") as out:
        demo = subprocess.Popen(
            [str(cli), "demo", "--no-hold", "--env", name],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "200"},
        )
        try:
            deadline = time.monotonic() + DEMO_TIMEOUT
            while demo.poll() is None and time.monotonic() < deadline:
                for record in recorded(root).values():
                    seen[(record.pid, record.start_ticks)] = record
                time.sleep(0.5)
        finally:
            if demo.poll() is None:
                demo.terminate()  # the demo tears its fleet down on SIGTERM
                demo.wait(timeout=120)
            leftover = Environment.named(name)
            left_in_state = sorted(leftover.processes)
            if left_in_state:
                leftover.down()  # leave the machine clean; reported below
    text = output.read_text()
    assert demo.returncode == 0, f"fleetplane demo exited with {demo.returncode}:\n{text[-6000:]}"
    for case in (1, 2, 3):
        assert re.search(rf"case {case} passed in \d", text), f"case {case} not reported passed:\n{text}"
    assert "all three cases passed" in text

    names = {r.name for r in seen.values()}
    assert set(PIPELINE) <= names, f"pipeline processes not recorded in the environment: {sorted(names)}"
    assert not left_in_state, f"the demo's state still lists processes: {left_in_state}"
    alive = sorted(f"{r.name} (pid {r.pid})" for r in seen.values() if process.is_alive(r))
    assert not alive, f"still running after the demo: {alive}"
    assert not root.exists(), f"{root} left behind"
