"""A composition function written with Crossplane's Python SDK, run as a RunFunction server.

The SDK pins gRPC and protobuf versions of its own, so it runs with an interpreter of its own: a
venv made once under ``~/.cache/fleetplane`` (from PyPI) and reused. ``serve`` starts
``tests/integration/provisioner/functions/size_policy.py`` on a free loopback port.
"""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import time

from localinfra import ports

SDK_VERSION = "0.15.1"
SDK_VENV = pathlib.Path.home() / ".cache" / "fleetplane" / f"function-sdk-{SDK_VERSION}"
SIZE_POLICY = pathlib.Path(__file__).parent / "integration" / "provisioner" / "functions" / "size_policy.py"
_START_SECONDS = 60.0


def sdk_python() -> pathlib.Path:
    """The SDK's interpreter: made once (a venv with the SDK from PyPI), then reused."""
    python = SDK_VENV / "bin" / "python"
    probe = [str(python), "-c", "import crossplane.function.runtime"]
    if python.exists() and subprocess.run(probe, capture_output=True, check=False).returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(SDK_VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"crossplane-function-sdk-python=={SDK_VERSION}"],
        check=True,
    )
    return python


def serve(log: pathlib.Path, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    """The size-policy server, once it listens, and its address."""
    python = sdk_python()
    port = ports.free_port()
    address = f"127.0.0.1:{port}"
    with log.open("ab") as out:
        server = subprocess.Popen(
            [str(python), str(SIZE_POLICY), "--address", address, *extra],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        )
    deadline = time.monotonic() + _START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the function server exited with {server.returncode}:\n{log.read_text()}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return server, address
        time.sleep(0.1)
    stop(server)
    raise RuntimeError(
        f"the function server did not listen on {address} in {_START_SECONDS:.0f}s:\n{log.read_text()}"
    )


def stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
