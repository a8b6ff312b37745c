"""The steps every component build is made of: a version stamp per component, a required tool,
a logged command with a heartbeat, and the Go environment the builds share."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from localinfra import paths, versions
from localinfra.errors import InfraError
from localinfra.process import log_tail
from localinfra.progress import Reporter, heartbeat, stderr_reporter

#: what every Go build of a component is compiled with: reproducible paths, no debug symbols
GO_FLAGS = ("-trimpath", "-ldflags=-s -w")


def stamp_file(name: str) -> Path:
    return paths.bin_dir() / ".stamps" / name


def is_built(name: str, version: str, outputs: Sequence[Path]) -> bool:
    stamp = stamp_file(name)
    return stamp.exists() and stamp.read_text() == version and all(p.exists() for p in outputs)


def mark_built(name: str, version: str) -> None:
    stamp = stamp_file(name)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(version)


@contextlib.contextmanager
def exclusive(name: str) -> Iterator[None]:
    """Hold ``name``'s build lock: two processes sharing the cache (two test runs, a test run and a
    benchmark) never build, or clean the work folder of, the same component at once."""
    lock = stamp_file(f"{name}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)


@contextlib.contextmanager
def building(name: str, version: str, outputs: Sequence[Path]) -> Iterator[bool]:
    """Whether ``name`` must be built, answered under its lock: False when it is (perhaps by
    another process while this one waited); True otherwise, and then the block's build is stamped
    when it ends without an error."""
    if is_built(name, version, outputs):
        yield False
        return
    with exclusive(name):
        if is_built(name, version, outputs):
            yield False
            return
        yield True
        mark_built(name, version)


def fresh_log(work: Path) -> Path:
    """``work`` (created) and an empty ``build.log`` in it, for a build that redoes everything."""
    work.mkdir(parents=True, exist_ok=True)
    log = work / "build.log"
    log.unlink(missing_ok=True)
    return log


def require_tool(tool: str, fix: str) -> str:
    found = shutil.which(tool)
    if not found:
        raise InfraError(f"`{tool}` is not installed", fix=fix)
    return found


def run(
    argv: Sequence[str],
    *,
    cwd: Path,
    log: Path,
    what: str,
    env: dict[str, str] | None = None,
    report: Reporter = stderr_reporter,
) -> None:
    """Run a build command, its output to ``log``; print a heartbeat so a long build shows life."""
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **(env or {})}
    started = time.monotonic()
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            list(argv), cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=full_env, stdin=subprocess.DEVNULL
        )
        while True:
            try:
                code = proc.wait(timeout=60)
                break
            except subprocess.TimeoutExpired:
                heartbeat(
                    report,
                    f"[fleetplane]   ... {what}: {time.monotonic() - started:.0f}s so far (log: {log})",
                )
    if code != 0:
        raise InfraError(
            f"{what} failed (exit {code}): {' '.join(argv)}",
            fix=f"read {log}; a registry failure is usually fixed by running the command again",
            log_tail=log_tail(log, 30),
        )


def go_env() -> dict[str, str]:
    # The toolchain named in the scratch module is fetched from the module proxy when missing.
    return {"GOTOOLCHAIN": versions.GO_TOOLCHAIN, "GOFLAGS": "-buildvcs=false", "CGO_ENABLED": "0"}


def go_get_and_build(
    modules: Sequence[str],
    package: str,
    target: Path,
    *,
    version_flag: str,
    work: Path,
    log: Path,
    name: str,
    report: Reporter = stderr_reporter,
) -> None:
    """``go get`` the pinned ``modules`` into the scratch module at ``work``, then build ``package``
    into ``target`` with ``version_flag`` (an ``-X`` setting: the binary reports its release)."""
    env = go_env()
    run(["go", "get", *modules], cwd=work, log=log, what=f"go get {name}", env=env, report=report)
    run(
        ["go", "build", "-trimpath", f"-ldflags=-s -w {version_flag}", "-o", str(target), package],
        cwd=work,
        log=log,
        what=f"go build {name}",
        env=env,
        report=report,
    )
