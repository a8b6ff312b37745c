"""A process tree's resident memory, open file descriptors and TCP connections, read from /proc.

A component is a process and its descendants (PostgreSQL's postmaster and its backends; the
others are one process each). Memory is the sum of their proportional set sizes (``Pss`` of
``smaps_rollup``: a page shared by n processes counts 1/n in each), so PostgreSQL's shared buffers
count once for the whole tree however many backends touched them, where resident set sizes would
count them once per backend and climb as backends come and go; descriptors are the entries of their
``fd`` folders; TCP connections are their sockets that /proc/net/tcp and tcp6 list in any state but
LISTEN. A process that ended meanwhile, or whose folders this user may not read, adds nothing.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
_LISTEN = "0A"


@dataclass(frozen=True)
class Usage:
    pss_mb: float
    fds: int
    tcp: int
    processes: int


def tcp_sockets(proc: Path = PROC) -> set[str]:
    """The inodes of the TCP sockets that are not listening (both address families)."""
    inodes: set[str] = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] != _LISTEN:
                inodes.add(fields[9])
    return inodes


def descendants(pid: int, proc: Path = PROC, *, apart: frozenset[int] = frozenset()) -> list[int]:
    """``pid`` and every process below it, but the trees under ``apart`` (components of their own
    that this one started)."""
    children: dict[int, list[int]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name, in parentheses, may hold spaces: the fields after it are plain
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        if current in apart:
            continue
        found.append(current)
        todo.extend(children.get(current, ()))
    return found


def field_mb(path: Path, field: str) -> float:
    """A ``Field:  N kB`` line of a /proc file, in MB (0 when the process is gone, or has no such
    line: a zombie has no memory left)."""
    with contextlib.suppress(OSError, ValueError):
        for line in path.read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return 0.0


def rss_mb(pid: int, proc: Path = PROC) -> float:
    return field_mb(proc / str(pid) / "status", "VmRSS")


def pss_mb(pid: int, proc: Path = PROC) -> float:
    return field_mb(proc / str(pid) / "smaps_rollup", "Pss")


def available_mb(proc: Path = PROC) -> float:
    return round(field_mb(proc / "meminfo", "MemAvailable"), 1)


def _sockets(pid: int, proc: Path) -> tuple[int, set[str]]:
    """(open descriptors, socket inodes among them)."""
    folder = proc / str(pid) / "fd"
    names = os.listdir(folder)
    inodes = set()
    for name in names:
        try:
            target = os.readlink(folder / name)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return len(names), inodes


def usage(pid: int, tcp: set[str], proc: Path = PROC, *, apart: frozenset[int] = frozenset()) -> Usage:
    """The tree under ``pid`` now, but the trees under ``apart``; ``tcp`` from :func:`tcp_sockets`,
    read once per sample."""
    pss = 0.0
    fds = connections = counted = 0
    for each in descendants(pid, proc, apart=apart - {pid}):
        try:
            used = pss_mb(each, proc)
            opened, sockets = _sockets(each, proc)
        except OSError:
            continue
        pss += used
        fds += opened
        connections += len(sockets & tcp)
        counted += 1
    return Usage(round(pss, 1), fds, connections, counted)
