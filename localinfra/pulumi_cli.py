"""Running the Pulumi CLI built into the cache on the ``bootstrap/`` project, as a user would.

The demo and the tests call ``pulumi`` through ``Stack``: the same binary and plugins a user puts
on PATH, with the environment docs/bootstrap.md's walkthrough exports (the cache's ``bin`` and the
virtualenv first on PATH, this machine's generated passphrase unless one is set, no update check).

There is no built-in passphrase: one that ships with the code protects nothing. The first use makes
a random one in ``~/.cache/fleetplane/pulumi-passphrase`` (mode 0600), and every stack of this
machine uses it unless ``PULUMI_CONFIG_PASSPHRASE`` or ``PULUMI_CONFIG_PASSPHRASE_FILE`` is set.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localinfra import paths
from localinfra.errors import InfraError
from trust import files

PROJECT_DIR = Path(__file__).resolve().parent.parent / "bootstrap"
PASSPHRASE_FILE = "pulumi-passphrase"


def state_dir() -> Path:
    """The project's file backend (``backend.url`` in ``Pulumi.yaml``), made when missing."""
    folder = paths.cache_root() / "pulumi"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def passphrase_file() -> Path:
    """This machine's passphrase for the stacks' secrets, made (random, mode 0600) on first use."""
    path = paths.cache_root() / PASSPHRASE_FILE
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{PASSPHRASE_FILE}.{secrets.token_hex(8)}")
    files.write_private(staged, secrets.token_urlsafe(32) + "\n")
    try:
        # A link never replaces an existing file: of two first uses at once, one passphrase wins
        # and both use it.
        os.link(staged, path)
    except FileExistsError:
        pass
    finally:
        staged.unlink()
    return path


def environ(backend: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([str(paths.bin_dir()), venv_bin, env.get("PATH", "")])
    if "PULUMI_CONFIG_PASSPHRASE" not in env and "PULUMI_CONFIG_PASSPHRASE_FILE" not in env:
        env["PULUMI_CONFIG_PASSPHRASE_FILE"] = str(passphrase_file())
    env["PULUMI_SKIP_UPDATE_CHECK"] = "true"
    # gRPC's informational line about fork() in the dynamic provider is noise to a user.
    env.setdefault("GRPC_VERBOSITY", "ERROR")
    if backend:
        env["PULUMI_BACKEND_URL"] = backend
    return env


@dataclass
class Stack:
    """One stack of the bootstrap project; ``backend`` None is the project's (under the cache)."""

    name: str
    backend: str | None = None
    project: Path = PROJECT_DIR
    env: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.env = environ(self.backend)
        state_dir()  # the file backend refuses a missing folder

    def _argv(self, *args: str, stack: bool = True) -> list[str]:
        """``pulumi ARGS`` never prompting; on this stack unless ``stack`` is False (commands such
        as ``stack select`` name it themselves)."""
        on_stack = ("--stack", self.name) if stack else ()
        return [str(paths.bin_dir() / "pulumi"), *args, *on_stack, "--non-interactive"]

    def _run(self, argv: list[str], capture: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            cwd=self.project,
            env=self.env,
            text=True,
            capture_output=capture,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def run(self, *args: str, check: bool = True, capture: bool = True) -> subprocess.CompletedProcess[str]:
        """``pulumi ARGS --stack NAME`` in the project folder; output captured unless ``capture``
        is False (then it goes to this process's terminal, Pulumi's live progress included)."""
        done = self._run(self._argv(*args), capture=capture)
        if check and done.returncode != 0:
            raise InfraError(
                f"`pulumi {' '.join(args)}` on stack {self.name} failed (exit {done.returncode})",
                fix=f"read Pulumi's message below; `pulumi stack --stack {self.name}` shows the stack and "
                f"`fleetplane local down --env pulumi-{self.name}` stops its processes",
                log_tail=((done.stdout or "") + (done.stderr or ""))[-3000:],
            )
        return done

    def run_logged(self, *args: str, log: Path, echo: Callable[[str], None]) -> int:
        """``pulumi ARGS`` with its output appended to ``log`` and passed to ``echo`` line by line;
        its exit code. For a run that must finish whatever happens to the terminal: Pulumi writes
        to a pipe of ours (never to a terminal that may close under it), an ``echo`` that fails
        (a closed pipe, a lost terminal) is dropped while the log still gets every line, and Pulumi
        runs in a session of its own, so a Ctrl-C or hang-up meant for the caller does not stop it."""
        argv = self._argv(*args)
        log.parent.mkdir(parents=True, exist_ok=True)
        with (
            log.open("a") as kept,
            subprocess.Popen(
                argv,
                cwd=self.project,
                env=self.env,
                text=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            ) as child,
        ):
            assert child.stdout is not None
            shown: Callable[[str], None] | None = echo
            for line in child.stdout:
                kept.write(line)
                kept.flush()
                if shown is not None:
                    try:
                        shown(line.rstrip("\n"))
                    except OSError:
                        shown = None
            return child.wait()

    def select(self) -> None:
        """Select the stack, creating it (with the passphrase secrets provider) the first time."""
        created = ("--create", self.name, "--secrets-provider", "passphrase")
        done = self._run(self._argv("stack", "select", *created, stack=False))
        if done.returncode != 0:
            raise InfraError(f"cannot select pulumi stack {self.name}", fix=done.stderr.strip())

    def outputs(self) -> dict[str, Any]:
        shown: dict[str, Any] = json.loads(self.run("stack", "output", "--json").stdout)
        return shown

    def exists(self) -> bool:
        """Whether the backend holds this stack (with or without resources)."""
        done = self._run(self._argv("stack", "ls", "--json", stack=False))
        if done.returncode != 0:
            raise InfraError(f"cannot list the pulumi stacks of {self.project}", fix=done.stderr.strip())
        return any(entry.get("name") == self.name for entry in json.loads(done.stdout or "[]"))

    def remove(self) -> None:
        """Forget the stack (its state and its ``Pulumi.<stack>.yaml``)."""
        self.run("stack", "rm", "--yes", "--force", check=False)
