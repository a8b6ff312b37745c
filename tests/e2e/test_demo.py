"""`fleetplane demo --no-hold`, the journey `make demo` shows a new user, run as they run it.

Cases: the command runs `pulumi up` on a stack of the bootstrap project (the management cluster,
PostgreSQL, Kafka, the Maestro server, the provisioner and the hub controllers), applies two
cluster claims and waits until both are Ready (each a cluster with Argo CD and a Maestro agent,
started by the provisioner), plays the source document's three ApplicationSet cases and says each
passed, runs `pulumi destroy`, exits 0, and leaves no process alive, no state and no stack behind.
The processes are learnt by reading the environments' state files while the demo runs (each is
recorded, by pid and start time, when it starts).
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

from localinfra import process, pulumi_cli
from localinfra.environment import Environment

pytestmark = pytest.mark.e2e

DEMO_TIMEOUT = 840.0
PLATFORM = ("etcd", "hub/kube-apiserver", "maestro/server", "hub/provisioner", "hub/controllers")


def recorded(root: Path) -> list[process.ProcessRecord]:
    """The processes the environments' state files list now (none once destroyed)."""
    with contextlib.suppress(OSError, ValueError):
        return Environment(root).all_processes()
    return []


def test_demo_plays_the_three_cases_and_cleans_up(tmp_path: Path) -> None:
    stack = f"e2e-demo-{os.getpid()}"
    root = Environment.named(f"pulumi-{stack}").root
    cli = Path(sys.executable).parent / "fleetplane"
    output = tmp_path / "demo.out"
    seen: dict[tuple[int, int], process.ProcessRecord] = {}
    left_in_state: list[str] = []
    with output.open("w") as out:
        demo = subprocess.Popen(
            [str(cli), "demo", "--no-hold", "--stack", stack],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "200"},
        )
        try:
            deadline = time.monotonic() + DEMO_TIMEOUT
            while demo.poll() is None and time.monotonic() < deadline:
                for record in recorded(root):
                    seen[(record.pid, record.start_ticks)] = record
                time.sleep(0.5)
        finally:
            if demo.poll() is None:
                demo.terminate()  # the demo tears its fleet down on SIGTERM
                demo.wait(timeout=120)
            leftover = Environment(root)
            left_in_state = sorted(r.name for r in leftover.all_processes())
            if left_in_state:
                leftover.down()  # leave the machine clean; reported below
            stacks = pulumi_cli.Stack(stack).run("stack", "ls", "--json", check=False).stdout
    text = output.read_text()
    assert demo.returncode == 0, f"fleetplane demo exited with {demo.returncode}:\n{text[-6000:]}"
    for case in (1, 2, 3):
        assert re.search(rf"case {case} passed in \d", text), f"case {case} not reported passed:\n{text}"
    assert "all three cases passed" in text
    assert re.search(r"2 clusters Ready in \d", text), text
    assert "Resources:\n    + 9 created" in text and "- 9 deleted" in text, text

    names = {r.name for r in seen.values()}
    assert set(PLATFORM) <= names, f"platform processes not recorded: {sorted(names)}"
    # The provisioner's clusters: a kube-apiserver, Argo CD and a Maestro agent each.
    assert len([n for n in names if n.endswith("/maestro-agent")]) == 2, sorted(names)
    assert not left_in_state, f"the demo's state still lists processes: {left_in_state}"
    alive = sorted(f"{r.name} (pid {r.pid})" for r in seen.values() if process.is_alive(r))
    assert not alive, f"still running after the demo: {alive}"
    assert not root.exists(), f"{root} left behind"
    assert stack not in stacks, f"the stack is still listed: {stacks}"
