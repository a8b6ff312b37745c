"""The `fleetplane local` journey a platform engineer takes on this machine.

Cases: `up` starts PostgreSQL, Kafka, a hub and a worker cluster with Argo CD and prints where each
is; `status` shows every process running and the kubeconfig it printed works with kubectl; a killed
process shows as dead in `status` (exit 1); `down` stops everything and leaves no process, no
listening port and no state behind.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from localinfra import paths, ports, process
from localinfra.environment import Environment
from tests.e2e.conftest import fleetplane

pytestmark = pytest.mark.e2e


def test_up_status_down(tmp_path: Path) -> None:
    name = f"e2e-{os.getpid()}"
    try:
        up = fleetplane("local", "up", "--workers", "1", "--env", name)
        for part in ("postgres", "kafka", "cluster/hub", "cluster/worker-1", "argocd/worker-1"):
            assert part in up.stdout
        env = Environment.named(name)
        assert fleetplane("local", "status", "--env", name).returncode == 0
        kubeconfig = env.endpoint("cluster/worker-1")["kubeconfig"]
        assert kubeconfig in up.stdout.replace("\n", "") or Path(kubeconfig).exists()
        crds = subprocess.run(
            [str(paths.bin_dir() / "kubectl"), "--kubeconfig", kubeconfig, "get", "crd", "-o", "name"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "applications.argoproj.io" in crds
        listening = [int(v["port"]) for v in env.endpoints.values() if "port" in v]
        records = list(env.processes.values())

        victim = env.processes["worker-1/argocd-repo-server"]
        process.kill_hard(victim)
        status = fleetplane("local", "status", "--env", name, check=False)
        assert status.returncode == 1 and "dead" in status.stdout
    finally:
        fleetplane("local", "down", "--env", name)
    assert not any(process.is_alive(r) for r in records)
    assert not any(ports.is_listening(p) for p in listening)
    assert not Environment.named(name).root.exists()
    assert fleetplane("local", "status", "--env", name, check=False).returncode == 1
