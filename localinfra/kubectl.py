"""The kubectl we built, for what it does best: server-side apply of large manifests."""

from __future__ import annotations

import json
import subprocess
import time
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
            f"kubectl {' '.join(args)[:200]} failed: {out.stderr.strip()[:1000]}",
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


def dry_run(
    kubeconfig: Path, source: Path | Iterable[dict[str, Any]], *, field_manager: str = "fleetplane"
) -> str:
    """kubectl's report of a server-side apply of ``source`` (a file, or objects) that stores
    nothing, with strict field validation: an unknown or misspelt field is an error."""
    args = [
        "apply",
        "--server-side",
        "--dry-run=server",
        "--validate=strict",
        f"--field-manager={field_manager}",
    ]
    if isinstance(source, Path):
        return run(kubeconfig, *args, "-f", str(source))
    return run(kubeconfig, *args, "-f", "-", stdin=yaml.safe_dump_all(list(source), sort_keys=False))


def apply_files(kubeconfig: Path, *files: Path, field_manager: str = "fleetplane") -> None:
    args = [a for f in files for a in ("-f", str(f))]
    run(kubeconfig, "apply", "--server-side", "--force-conflicts", f"--field-manager={field_manager}", *args)


def wait_established(kubeconfig: Path, *crds: str, timeout: float = 60) -> None:
    """Wait until each CRD is served (``kubectl wait`` fails outright while conditions are unset)."""
    deadline = time.monotonic() + timeout
    for crd in crds:
        while True:
            status = json.loads(run(kubeconfig, "get", "crd", crd, "-o", "json")).get("status") or {}
            conditions = status.get("conditions") or []
            if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                break
            if time.monotonic() > deadline:
                raise InfraError(
                    f"CRD {crd} was not established within {timeout:.0f}s", fix="read the kube-apiserver log"
                )
            time.sleep(0.2)
