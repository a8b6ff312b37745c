"""Detached processes are found again by pid and start time, and a crash is reported with its log.

Cases: a spawned process is alive and survives in a fresh record read back from JSON; stop ends it;
a process that exits before it is ready raises at once with the last lines of its log; a recycled
pid (same pid, another start time) does not count as ours; a command run as another user goes
through setpriv (a Python fork in a gRPC process crashed the child) and runs as that user; the
children a process killed -9 leaves in its session are found and waited for.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import time
from pathlib import Path

import pytest

from localinfra import process
from localinfra.environment import Environment
from localinfra.errors import InfraError


def test_spawned_process_is_tracked_and_stopped(tmp_path: Path) -> None:
    env = Environment(tmp_path / "env")
    record = env.add_process(process.spawn("sleeper", ["sleep", "60"], tmp_path / "sleep.log"))
    again = Environment(tmp_path / "env").processes["sleeper"]
    assert again == record and process.is_alive(again)
    env.down()
    assert not process.is_alive(record)
    assert not (tmp_path / "env").exists()


def test_crash_before_ready_reports_the_log(tmp_path: Path) -> None:
    record = process.spawn("crasher", ["sh", "-c", "echo cannot bind port 1234; exit 3"], tmp_path / "c.log")
    started = time.monotonic()
    with pytest.raises(InfraError) as err:
        process.wait_until(record, lambda: False, timeout=60, what="listening")
    assert time.monotonic() - started < 10
    assert "crasher exited before it was listening" in str(err.value)
    assert "cannot bind port 1234" in err.value.log_tail


def test_recycled_pid_is_not_ours(tmp_path: Path) -> None:
    record = process.spawn("sleeper", ["sleep", "30"], tmp_path / "s.log")
    impostor = process.ProcessRecord("sleeper", record.pid, record.start_ticks + 1, record.argv, record.log)
    assert process.is_alive(record) and not process.is_alive(impostor)
    process.stop(record)


def test_as_user_runs_the_command_as_that_user_without_forking_python() -> None:
    assert process.as_user(["initdb", "-D", "x"], None) == ["initdb", "-D", "x"]
    if os.geteuid() != 0:
        pytest.skip("switching users needs root")
    nobody = pwd.getpwnam("nobody")
    argv = process.as_user(["id", "-u"], "nobody")
    assert argv[0] == "setpriv" and argv[-3:] == ["--", "id", "-u"]
    shown = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    assert shown.strip() == str(nobody.pw_uid)


def test_cpu_of_a_process_counts_its_descendants_and_nothing_else() -> None:
    # 10 -> 11 -> 12 (a server, a backend, the backend's helper); 20 beside them; 30 is gone
    stats = {10: (1, 100), 11: (10, 40), 12: (11, 2), 20: (1, 7), 21: (20, 1)}
    assert process.tree_cpu_ticks({"postgres": 10, "kafka": 20, "dead": 30}, stats) == {
        "postgres": 142,
        "kafka": 8,
    }


def test_cpu_seconds_grow_while_a_spawned_process_works(tmp_path: Path) -> None:
    busy = ["python3", "-c", "import time\nend = time.time() + 30\nwhile time.time() < end: pass"]
    env = Environment(tmp_path / "env")
    try:
        env.add_process(process.spawn("busy", busy, tmp_path / "busy.log"))
        first = process.cpu_seconds(env.processes)["busy"]
        # however busy the machine is, the spinning process gets some CPU within the deadline
        deadline = time.monotonic() + 20
        while process.cpu_seconds(env.processes)["busy"] < first + 0.2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert process.cpu_seconds(env.processes)["busy"] >= first + 0.2
    finally:
        env.down()


def test_children_outliving_a_kill_hard_are_waited_for(tmp_path: Path) -> None:
    # A leader whose child keeps running after the leader is killed -9, as a postmaster's backends do.
    record = process.spawn("leader", ["sh", "-c", "sleep 60 & exec sleep 60"], tmp_path / "l.log")
    try:
        deadline = time.monotonic() + 10
        while len(process.session_members(record)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert record.pid in process.session_members(record) and len(process.session_members(record)) == 2
        process.kill_hard(record)
        (orphan,) = process.session_members(record)
        with pytest.raises(InfraError, match=rf"processes \[{orphan}\] of its session still run"):
            process.wait_session_gone(record, timeout=0.3)
        os.kill(orphan, 9)
        process.wait_session_gone(record, timeout=10)
        assert process.session_members(record) == []
    finally:
        process.stop(record)
