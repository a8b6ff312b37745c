"""An AWS API on loopback for the aws provider: moto's server mode, reached over real HTTP.

One ``moto_server`` process per test session (it starts in about a second); ``moto_endpoint``
empties its state before each test, so no test sees another's clusters. The fake credentials are
given to the boto3 session and to the server process explicitly, never put into this process's
environment, where they would change what other tests' AWS clients do.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from localinfra import ports

REGION = "us-east-1"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
}
_START_ATTEMPTS = 3
_START_SECONDS = 30.0


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _start(log_path: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    """The server on a free port, once it answers; None when it exited first (the port was taken)."""
    port = ports.free_port()
    url = f"http://127.0.0.1:{port}"
    with log_path.open("ab") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            env={**os.environ, **FAKE_CREDENTIALS},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + _START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            return None
        if _answers(url):
            return server, url
        time.sleep(0.1)
    _stop(server)
    raise RuntimeError(f"moto_server did not answer on {url} in {_START_SECONDS:.0f}s; log: {log_path}")


def _stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a running moto server."""
    log_path = tmp_path_factory.mktemp("moto") / "moto_server.log"
    for _ in range(_START_ATTEMPTS):
        started = _start(log_path)
        if started is not None:
            break
    else:
        tail = log_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"moto_server exited at start {_START_ATTEMPTS} times; its log ends:\n{tail}")
    server, url = started
    try:
        yield url
    finally:
        _stop(server)


@pytest.fixture
def moto_endpoint(moto_server: str) -> str:
    """The moto server's URL, with every service's state reset."""
    request = urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    return moto_server


@pytest.fixture(scope="session")
def aws_session() -> boto3.Session:
    """Shared so that botocore loads the service models once; each test still gets its own clients."""
    return boto3.Session(
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
        region_name=REGION,
    )
