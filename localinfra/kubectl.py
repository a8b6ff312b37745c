"""The kubectl we built, for what it does best: server-side apply of large manifests."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from localinfra import paths
from localinfra.errors import InfraError


def run(kubeconfig: Path, *args: str, stdin: str | None = None, timeout: float = 120) -> str:
    argv = [str(paths.bin_dir() / "kubectl"), "--kubeconfig", str(kubeconfig), *args]
    out = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    if out.returncode != 0:
        raise InfraError(
            f"kubectl {' '.join(args)} failed: {out.stderr.strip()}",
            fix="check the manifest and that the cluster is up (`fleetplane local status`)",
        )
    return out.stdout


def apply(kubeconfig: Path, objects: Iterable[dict[str, Any]], *, field_manager: str = "fleetplane") -> None:
    docs = yaml.safe_dump_all(list(objects), sort_keys=False)
    run(
        kubeconfig,
        "apply",
        "--server-side",
        "--force-conflicts",
        f"--field-manager={field_manager}",
        "-f",
        "-",
        stdin=docs,
    )


def apply_files(kubeconfig: Path, *files: Path, field_manager: str = "fleetplane") -> None:
    args = [a for f in files for a in ("-f", str(f))]
    run(kubeconfig, "apply", "--server-side", "--force-conflicts", f"--field-manager={field_manager}", *args)
