"""A Redis server from the Debian package (Argo CD's cache), as a plain local process."""

from __future__ import annotations

import shutil
import socket

from localinfra import ports, process
from localinfra.environment import Environment
from localinfra.errors import InfraError


def _pong(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")


def start(env: Environment, name: str) -> int:
    binary = shutil.which("redis-server")
    if not binary:
        raise InfraError("redis-server is not installed", fix="apt-get install -y redis-server")
    port = ports.free_port()
    workdir = env.path(name)
    argv = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "no",
        "--dir",
        str(workdir),
    ]
    record = env.add_process(process.spawn(name, argv, workdir / "redis.log"))
    process.wait_until(record, lambda: _pong(port), timeout=30, what="answering PING")
    env.set_endpoint(name, host="127.0.0.1", port=port)
    return port
