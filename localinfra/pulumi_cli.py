"""Running the Pulumi CLI built into the cache on the ``bootstrap/`` project, as a user would.

The demo and the tests call ``pulumi`` through ``Stack``: the same binary and plugins a user puts
on PATH, with the environment the README's walkthrough exports (the cache's ``bin`` and the
virtualenv first on PATH, the demo's passphrase unless one is set, no update check).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localinfra import paths
from localinfra.errors import InfraError

PROJECT_DIR = Path(__file__).resolve().parent.parent / "bootstrap"
#: The passphrase of the demo's secrets (README); set PULUMI_CONFIG_PASSPHRASE for anything else.
DEMO_PASSPHRASE = "fleetplane-demo"


def state_dir() -> Path:
    """The project's file backend (``backend.url`` in ``Pulumi.yaml``), made when missing."""
    folder = paths.cache_root() / "pulumi"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def environ(backend: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([str(paths.bin_dir()), venv_bin, env.get("PATH", "")])
    env.setdefault("PULUMI_CONFIG_PASSPHRASE", DEMO_PASSPHRASE)
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

    def run(self, *args: str, check: bool = True, capture: bool = True) -> subprocess.CompletedProcess[str]:
        """``pulumi ARGS --stack NAME`` in the project folder; output captured unless ``capture``
        is False (then it goes to this process's terminal, Pulumi's live progress included)."""
        argv = [str(paths.bin_dir() / "pulumi"), *args, "--stack", self.name, "--non-interactive"]
        done = subprocess.run(
            argv,
            cwd=self.project,
            env=self.env,
            text=True,
            capture_output=capture,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if check and done.returncode != 0:
            raise InfraError(
                f"`pulumi {' '.join(args)}` on stack {self.name} failed (exit {done.returncode})",
                fix=f"read Pulumi's message below; `pulumi stack --stack {self.name}` shows the stack and "
                f"`fleetplane local down --env pulumi-{self.name}` stops its processes",
                log_tail=((done.stdout or "") + (done.stderr or ""))[-3000:],
            )
        return done

    def select(self) -> None:
        """Select the stack, creating it (with the passphrase secrets provider) the first time."""
        argv = [
            str(paths.bin_dir() / "pulumi"),
            "stack",
            "select",
            "--create",
            self.name,
            "--non-interactive",
        ]
        done = subprocess.run(
            [*argv, "--secrets-provider", "passphrase"],
            cwd=self.project,
            env=self.env,
            text=True,
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            raise InfraError(f"cannot select pulumi stack {self.name}", fix=done.stderr.strip())

    def outputs(self) -> dict[str, Any]:
        shown: dict[str, Any] = json.loads(self.run("stack", "output", "--json").stdout)
        return shown

    def remove(self) -> None:
        """Forget the stack (its state and its ``Pulumi.<stack>.yaml``)."""
        self.run("stack", "rm", "--yes", "--force", check=False)
