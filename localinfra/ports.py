"""Free loopback ports.

A port is taken by binding to port 0; the port is then handed to a child process. Another process
could grab it in between, so ports handed out by this process are remembered and never handed out
twice, and a child that fails to bind is reported by its own log (the caller retries).
"""

from __future__ import annotations

import socket
import threading

_lock = threading.Lock()
_given: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    with _lock:
        for _ in range(100):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((host, 0))
                port = int(sock.getsockname()[1])
            if port not in _given:
                _given.add(port)
                return port
    raise RuntimeError("no free loopback port after 100 tries")


def is_listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0
