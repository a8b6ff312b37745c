"""`fleetplane local install --cases`, the one command that installs the hub chart on a local hub,
run as a user runs it, then the demo's three ApplicationSet cases on what it installed.

It builds the images (cached), pushes them to a local registry, `helm install`s
charts/fleetplane-hub and runs its pods. Which way they run is said, and checked here against the
hub: by a kubelet when a node of the hub is Ready, else (this machine: no kubelet) through the
local workload runner, each Deployment's container a process with its command, args, env and
mounted Secrets and ConfigMaps, as its ServiceAccount. The demo's two cluster claims are then
provisioned by the chart's provisioner and the three cases pass on the chart's controllers and
server. `fleetplane local down` removes it all.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fleetplane import local_install
from localinfra import kube, process
from localinfra.environment import Environment

pytestmark = pytest.mark.e2e

CLI = Path(sys.executable).parent / "fleetplane"
INSTALL_TIMEOUT = 1500


def test_the_chart_installed_platform_plays_the_demos_three_cases() -> None:
    name = f"e2e-install-{os.getpid()}"
    started = time.monotonic()
    try:
        done = subprocess.run(
            [str(CLI), "local", "install", "--env", name, "--cases"],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            env={**os.environ, "COLUMNS": "200"},
            check=False,
        )
        took = time.monotonic() - started
        said = done.stdout + done.stderr
        print("\n" + "\n".join(line for line in said.splitlines() if re.search(r" in \d+(\.\d)?s", line)))
        assert done.returncode == 0, said[-8000:]
        environment = Environment.named(name)  # its state as the command left it
        hub = kube.Cluster.from_env(environment, "hub")
        nodes = local_install.ready_nodes(hub)
        path = local_install.KUBELET if nodes else local_install.RUNNER
        print(f"\npath taken: {path} (Ready nodes: {nodes or 'none'}); install and cases in {took:.0f}s")
        assert f"the chart is installed ({path})" in said, said[-4000:]
        if path == local_install.RUNNER:
            assert "no kubelet (no node of the hub is Ready)" in said, said[-4000:]
            running = {r.name for r in environment.processes.values() if process.is_alive(r)}
            release = local_install.RELEASE
            wanted = {
                f"{local_install.PREFIX}{release}-{c}" for c in ("maestro", "controllers", "provisioner")
            }
            assert wanted <= running, running
        for case in (1, 2, 3):
            assert re.search(rf"case {case} passed in \d", said), said[-6000:]
        assert "all three cases passed" in said, said[-6000:]
        assert re.search(r"2 clusters Ready in \d", said), said[-6000:]
    finally:
        down = subprocess.run(
            [str(CLI), "local", "down", "--env", name], capture_output=True, text=True, check=False
        )
    assert down.returncode == 0, down.stderr
    assert not Environment.named(name).root.exists(), f"{Environment.named(name).root} left behind"
