"""What the local workload runner changes in a chart's container command, and only that: the
pod's ports become free loopback ports, its listening addresses loopback, the Service address of
the server the server's local one, and the image's `fleetplane` this virtualenv's."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetplane import local_install
from localinfra import kube
from localinfra.environment import Environment
from localinfra.errors import InfraError


def test_ports_hosts_and_the_servers_address_become_local(tmp_path: Path) -> None:
    runner = local_install.Runner(Environment(tmp_path), kube.Cluster("hub", "", tmp_path / "kubeconfig"))
    runner.addresses["fleetplane-hub-maestro.fleetplane.svc:8090"] = "127.0.0.1:4242"
    argv = [
        "fleetplane", "controllers", "run",
        "--maestro", "fleetplane-hub-maestro.fleetplane.svc:8090",
        "--health-host", "0.0.0.0", "--health-port", "8080",
        "--metrics-host", "0.0.0.0", "--metrics-port", "9090",
        "--log-level", "info",
    ]  # fmt: skip

    local, ports = runner._local(argv)

    assert set(ports) == {"--health-port", "--metrics-port"}
    assert ports["--health-port"] != 8080 and ports["--metrics-port"] != 9090
    assert local == [
        "fleetplane", "controllers", "run",
        "--maestro", "127.0.0.1:4242",
        "--health-host", "127.0.0.1", "--health-port", str(ports["--health-port"]),
        "--metrics-host", "127.0.0.1", "--metrics-port", str(ports["--metrics-port"]),
        "--log-level", "info",
    ]  # fmt: skip
    assert local_install._fleetplane(local)[-2:] == ["--log-level", "info"]


def test_a_container_that_runs_something_else_is_refused() -> None:
    with pytest.raises(InfraError, match=r"runs \['/bin/sh'\], not fleetplane"):
        local_install._fleetplane(["/bin/sh", "-c", "true"])
