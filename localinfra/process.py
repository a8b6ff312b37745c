"""Detached, supervised local processes.

A component process outlives the command that started it (``fleetplane local up`` returns, the
cluster keeps running), so it is started in its own session and recorded by pid *and* kernel start
time: a recycled pid is never mistaken for our process. A process that dies while we wait for it is
reported with the last lines of its log instead of waiting out a timeout.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from localinfra.errors import InfraError


@dataclass(frozen=True)
class ProcessRecord:
    name: str
    pid: int
    start_ticks: int
    argv: tuple[str, ...]
    log: str

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["argv"] = list(self.argv)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> ProcessRecord:
        argv = data["argv"]
        assert isinstance(argv, list)
        return cls(
            name=str(data["name"]),
            pid=int(str(data["pid"])),
            start_ticks=int(str(data["start_ticks"])),
            argv=tuple(str(a) for a in argv),
            log=str(data["log"]),
        )


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself hold spaces or parentheses.
    return raw[raw.rindex(")") + 2 :].split()


def _start_ticks(pid: int) -> int:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else -1


def tree_cpu_ticks(roots: Mapping[str, int], stats: Mapping[int, tuple[int, int]]) -> dict[str, int]:
    """Clock ticks used by each root process and every live descendant, from ``stats`` (pid ->
    (parent pid, ticks of that process with its reaped children)): PostgreSQL's work is done in
    its server's child processes, which a figure of the server alone would leave out."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    out: dict[str, int] = {}
    for name, root in roots.items():
        if root not in stats:
            continue
        total, pending = 0, [root]
        while pending:
            pid = pending.pop()
            total += stats[pid][1]
            pending.extend(children.get(pid, ()))
        out[name] = total
    return out


def cpu_seconds(records: Mapping[str, ProcessRecord]) -> dict[str, float]:
    """CPU seconds (user and system) each live process and its descendants have used so far."""
    stats: dict[int, tuple[int, int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                # after the name: ppid is field 1; utime, stime, cutime, cstime are fields 11-14
                stats[int(entry.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]))
    live = {name: r.pid for name, r in records.items() if is_alive(r)}
    hz = os.sysconf("SC_CLK_TCK")
    return {name: ticks / hz for name, ticks in tree_cpu_ticks(live, stats).items()}


def is_alive(record: ProcessRecord) -> bool:
    fields = _stat_fields(record.pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return int(fields[19]) == record.start_ticks


def log_tail(path: str | Path, lines: int = 25) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def as_user(argv: Sequence[str], user: str | None) -> list[str]:
    """``argv`` run as ``user`` (None: as ourselves) through util-linux's ``setpriv``.

    Not ``subprocess``'s ``user=``: that makes Python fork instead of vfork, and a fork of a
    process using gRPC (the Pulumi dynamic provider, the operators) runs gRPC's fork handlers in
    the child, which crashed initdb and postgres with SIGSEGV about one start in five.
    """
    if user is None:
        return list(argv)
    entry = pwd.getpwnam(user)
    return ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups", "--", *argv]


def spawn(
    name: str,
    argv: Sequence[str],
    log: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
) -> ProcessRecord:
    """Start ``argv`` detached from us, its output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    with open(log, "ab") as out:
        try:
            proc = subprocess.Popen(
                as_user(argv, user),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=full_env,
                cwd=cwd,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise InfraError(
                f"{name}: cannot run {argv[0]}", fix="run `fleetplane local build` to build it"
            ) from exc
    return ProcessRecord(name, proc.pid, _start_ticks(proc.pid), tuple(argv), str(log))


def wait_until(
    record: ProcessRecord,
    ready: Callable[[], bool],
    *,
    timeout: float,
    what: str = "ready",
) -> None:
    """Poll ``ready`` until it holds; fail fast (with the log) if the process dies first."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        if not is_alive(record):
            _reap(record.pid)
            raise InfraError(
                f"{record.name} exited before it was {what}",
                fix=f"read {record.log}",
                log_tail=log_tail(record.log),
            )
        with contextlib.suppress(Exception):
            if ready():
                return
        if time.monotonic() > deadline:
            raise InfraError(
                f"{record.name} was not {what} within {timeout:.0f}s",
                fix=f"read {record.log}",
                log_tail=log_tail(record.log),
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def _reap(pid: int) -> None:
    # Only our own children can be reaped; others were reparented and are reaped by init.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def stop(record: ProcessRecord, timeout: float = 15.0) -> None:
    """Stop the process and its whole session: TERM, then KILL after ``timeout``."""
    if not is_alive(record):
        _reap(record.pid)
        return
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(record.pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap(record.pid)
            if not is_alive(record):
                return
            time.sleep(0.05)
    raise InfraError(f"{record.name} (pid {record.pid}) did not stop", fix=f"kill -9 {record.pid}")


def session_members(record: ProcessRecord) -> list[int]:
    """Live processes of the session ``record`` leads (``spawn`` starts a new one): its children
    outlive a ``kill_hard`` until they notice it is gone."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            # after the name: state is field 0, the session id field 3
            if fields is not None and fields[0] not in ("Z", "X") and int(fields[3]) == record.pid:
                members.append(int(entry.name))
    return members


def wait_session_gone(record: ProcessRecord, timeout: float) -> None:
    """Wait until no process of ``record``'s session is left."""
    deadline = time.monotonic() + timeout
    while left := session_members(record):
        if time.monotonic() > deadline:
            raise InfraError(
                f"{record.name}: processes {left} of its session still run {timeout:.0f}s after it died",
                fix=f"kill -9 {' '.join(map(str, left))}",
            )
        _reap(record.pid)
        time.sleep(0.1)


def kill_hard(record: ProcessRecord) -> None:
    """kill -9 the process alone (its children stay), as a crash would; for failure tests."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(record.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while is_alive(record) and time.monotonic() < deadline:
        _reap(record.pid)
        time.sleep(0.02)
