"""One etcd serves the API servers of several local clusters, each under its own key prefix."""

from __future__ import annotations

import base64
import json
import urllib.request

from localinfra import paths, ports, process
from localinfra.environment import Environment


def _healthy(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
        return bool(json.loads(resp.read()).get("health") == "true")


def start(env: Environment, name: str = "etcd", *, quota_gib: int = 8) -> str:
    client, peer = ports.free_port(), ports.free_port()
    data = env.path(name, "data")
    url = f"http://127.0.0.1:{client}"
    argv = [
        str(paths.bin_dir() / "etcd"),
        "--name",
        name,
        "--data-dir",
        str(data),
        "--listen-client-urls",
        url,
        "--advertise-client-urls",
        url,
        "--listen-peer-urls",
        f"http://127.0.0.1:{peer}",
        "--initial-advertise-peer-urls",
        f"http://127.0.0.1:{peer}",
        "--initial-cluster",
        f"{name}=http://127.0.0.1:{peer}",
        "--quota-backend-bytes",
        str(quota_gib * 1024**3),
        "--auto-compaction-mode",
        "periodic",
        "--auto-compaction-retention",
        "5m",
        # Local clusters are rebuilt rather than recovered: do not wait on the disk for every write.
        "--unsafe-no-fsync",
        "--log-level",
        "warn",
    ]
    record = env.add_process(process.spawn(name, argv, env.root / name / "etcd.log"))
    process.wait_until(record, lambda: _healthy(url), timeout=60, what="healthy")
    env.set_endpoint(name, url=url)
    return url


def _prefix_end(prefix: bytes) -> bytes:
    """The smallest key after every key that starts with ``prefix`` (etcd's range end)."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\0"


def delete_prefix(url: str, prefix: str) -> int:
    """Delete every key under ``prefix`` through etcd's JSON gateway; returns how many went."""
    key = prefix.encode()
    body = json.dumps(
        {"key": base64.b64encode(key).decode(), "range_end": base64.b64encode(_prefix_end(key)).decode()}
    ).encode()
    request = urllib.request.Request(f"{url}/v3/kv/deleterange", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=30) as resp:
        return int(json.loads(resp.read()).get("deleted") or 0)
