"""The publish benchmark's load from upstream Maestro's own Go clients (``localinfra/upstream_maestro``).

Creates go through the sdk-go source work client as upstream's performance tool drives it: a
client per cluster, each publishing one work after another and waiting for its answer; a list is
upstream's source work client listing every work of the source through the REST API, page by page.
The driver runs as a child process and answers in JSON.
"""

from __future__ import annotations

import asyncio
import json
import resource
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localinfra.errors import InfraError
from trust.files import TLSFiles

#: long enough for thousands of creates on a loaded machine
TIMEOUT_S = 1800


@dataclass(frozen=True)
class Endpoints:
    """How the driver reaches a server: its gRPC source API, its REST API, and (None: plaintext)
    the client certificate it presents."""

    grpc: str
    rest: str
    tls: TLSFiles | None


@dataclass(frozen=True)
class Creates:
    latencies_s: list[float]
    seconds: float
    errors: list[str]
    #: CPU seconds (user and system) the driver used: the load generator shares the cores
    client_cpu_s: float


class GoDriver:
    def __init__(self, path: Path, source: str) -> None:
        self.path = path
        self.source = source

    def _argv(self, at: Endpoints, *command: str) -> list[str]:
        argv = [str(self.path), f"--rest={at.rest}", f"--grpc={at.grpc}", f"--source={self.source}"]
        if at.tls is not None:
            argv += [f"--ca={at.tls.ca}", f"--cert={at.tls.cert}", f"--key={at.tls.key}"]
        return [*argv, f"--timeout={TIMEOUT_S}s", *command]

    async def _run(self, argv: list[str]) -> tuple[Any, float]:
        """The driver's answer, and the CPU seconds it used."""
        before = _children_cpu()
        child = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await child.communicate()
        if child.returncode != 0:
            raise InfraError(
                f"upstream's client failed (exit {child.returncode}): {argv[-1]}",
                fix="read its error below; check the server's log",
                log_tail=err.decode(errors="replace")[-3000:],
            )
        return json.loads(out), _children_cpu() - before

    async def create(
        self, at: Endpoints, prefix: str, count: int, bundle_kib: int, clusters: Sequence[str]
    ) -> Creates:
        """``count`` creates spread over ``clusters``, one in flight per cluster."""
        answer, cpu = await self._run(
            self._argv(at, "bench-create", prefix, str(count), str(bundle_kib), *clusters)
        )
        errors = [answer["first_error"]] * int(answer["errors"]) if answer["errors"] else []
        latencies = [ms / 1000 for ms in answer["latencies_ms"]]
        return Creates(latencies, float(answer["seconds"]), errors, cpu)

    async def list_all(self, at: Endpoints) -> tuple[int, float]:
        """Every work of the source, listed as upstream's client lists: how many, in how long."""
        answer, _ = await self._run(self._argv(at, "bench-list"))
        return int(answer["items"]), float(answer["seconds"])


def _children_cpu() -> float:
    """CPU seconds used by this process's children waited for so far (the driver runs alone at a
    time; the servers are not waited for until they stop)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime
