"""What an interrupted demo leaves (its stack in Pulumi's state, its processes running) never
trips the next one, whichever way the user goes on:

- the documented recovery, ``fleetplane local down --env pulumi-<stack>``, stops the processes
  and forgets the stack;
- running the demo again without it: the demo does the same itself before ``pulumi up``;
- a second demo of the same stack while one runs is refused, naming the way out.

The stack is a real one of the bootstrap project (``pulumi stack init``); its "platform" is a
process recorded in its environment as the demo's parts are. The full demo, killed -9 and run
again, is in tests/e2e/test_demo.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from fleetplane import local_cli
from fleetplane.cli import app
from localinfra import paths, process, pulumi_cli
from localinfra.environment import Environment

pytestmark = pytest.mark.integration


@pytest.fixture
def left_behind() -> Iterator[tuple[pulumi_cli.Stack, process.ProcessRecord]]:
    """A stack and a live process of its environment, as a demo killed -9 leaves them."""
    stack = pulumi_cli.Stack(f"it-interrupted-{os.getpid()}")
    stack.select()
    environment = Environment.named(f"{local_cli.STACK_ENV_PREFIX}{stack.name}")
    record = environment.add_process(
        process.spawn("platform", ["sleep", "600"], environment.path("logs") / "platform.log")
    )
    try:
        yield stack, record
    finally:
        environment.down()
        stack.remove()


def test_the_documented_recovery_stops_the_processes_and_forgets_the_stack(
    left_behind: tuple[pulumi_cli.Stack, process.ProcessRecord],
) -> None:
    stack, platform = left_behind
    result = CliRunner().invoke(app, ["local", "down", "--env", f"pulumi-{stack.name}"])
    assert result.exit_code == 0, result.output
    assert f"Pulumi stack `{stack.name}` forgotten" in result.output
    assert not process.is_alive(platform)
    assert not stack.exists()


def test_the_next_demo_cleans_up_what_an_interrupted_one_left(
    left_behind: tuple[pulumi_cli.Stack, process.ProcessRecord], capsys: pytest.CaptureFixture[str]
) -> None:
    stack, platform = left_behind
    local_cli._forget_interrupted(stack)
    assert "was left by an interrupted demo" in capsys.readouterr().err
    assert not process.is_alive(platform)
    assert not stack.exists()


def test_a_second_demo_of_a_running_stack_is_refused() -> None:
    stack = f"it-locked-{os.getpid()}"
    hold = (
        f"from fleetplane import local_cli; local_cli._only_demo_of({stack!r}); "
        "print('held', flush=True); input()"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        result = CliRunner().invoke(app, ["demo", "--stack", stack, "--no-hold"])
        assert result.exit_code == 1
        assert f"another `fleetplane demo` of stack '{stack}' is running" in result.output
        assert "stop it with Ctrl-C first" in result.output
    finally:
        holder.communicate("\n", timeout=10)
        (paths.envs_dir() / f".demo-{stack}.lock").unlink(missing_ok=True)
