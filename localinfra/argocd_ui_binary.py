"""An ``argocd`` binary with the built web UI embedded, for the hub's argocd-server to serve.

argocd-server reads ``index.html`` only from the ``ui`` package's embedded ``dist/app`` (the
module's copy is empty; ``--staticassets`` only adds files beside it). So the Argo CD module is
copied (files hard-linked from the read-only module cache), its ``ui/dist/app`` filled with the
assets :mod:`localinfra.argocd_ui` built, and the same ``cmd`` package built in a scratch module
with the go.mod and go.sum of the Kubernetes/Argo CD build plus one ``replace`` to that copy: the
dependency graph is the same, so the Go build cache serves everything outside Argo CD's own packages.

The binary is stamped as Argo CD's Makefile stamps a release (``-X .../common.version`` and the
rest), so ``argocd version`` and the UI's badge name the release rather than ``v99.99.99``. The
module proxy keeps no commit, so the version reads ``v3.6.1+unknown``: Argo CD shows a bare tag only
beside a commit.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localinfra import argocd_ui, build, build_steps, paths, versions
from localinfra.errors import InfraError
from localinfra.progress import Reporter, stderr_reporter, step

#: roughly how long a build takes on 2 shared cores with a warm Go build cache, in seconds
ESTIMATE = 600.0
_UI_PACKAGE_DIST = Path("ui") / "dist" / "app"
#: where Argo CD keeps its build's version variables (Argo CD's Makefile: ``PACKAGE``)
VERSION_PACKAGE = f"{argocd_ui.ARGOCD_MODULE}/common"
_CLIENT_GO = "k8s.io/client-go"


def binary_path() -> Path:
    """``~/.cache/fleetplane/bin/argocd-with-ui-<version>``."""
    return paths.bin_dir() / f"argocd-with-ui-{versions.ARGOCD}"


def _stamp_path() -> Path:
    return binary_path().with_name(binary_path().name + ".json")


def _wanted_stamp(assets: Path) -> dict[str, Any]:
    """What the binary was built from: the Argo CD version, the Go toolchain, the UI build's own
    stamp and its ``index.html`` (which names every bundle by its content hash)."""
    return {
        "argocd": versions.ARGOCD,
        "go": versions.GO_TOOLCHAIN,
        "ui": json.loads((assets / argocd_ui.STAMP).read_text()),
        "index.html": hashlib.sha256((assets / "index.html").read_bytes()).hexdigest(),
    }


def built_binary() -> Path | None:
    """The UI-embedding ``argocd`` when it was built from the UI now in the cache, else None."""
    assets = argocd_ui.built_assets()
    stamp = _stamp_path()
    if assets is None or not binary_path().is_file() or not stamp.is_file():
        return None
    return binary_path() if json.loads(stamp.read_text()) == _wanted_stamp(assets) else None


def mark_built(assets: Path) -> None:
    """Record that :func:`binary_path` embeds ``assets``."""
    _stamp_path().write_text(json.dumps(_wanted_stamp(assets)) + "\n")


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another filesystem: a copy (the module cache's files are never changed)
        shutil.copyfile(src, dst)


def module_copy(module: Path, assets: Path, dest: Path) -> None:
    """``module`` at ``dest`` with ``ui/dist/app`` replaced by ``assets`` (real files: go:embed
    refuses symbolic links)."""
    if dest.exists():
        _make_writable(dest)
        shutil.rmtree(dest)
    shutil.copytree(module, dest, copy_function=_link_or_copy)
    # The module cache's folders are read-only and copytree keeps their modes.
    _make_writable(dest)
    dist = dest / _UI_PACKAGE_DIST
    shutil.rmtree(dist)
    shutil.copytree(assets, dist, copy_function=shutil.copyfile)
    (dist / argocd_ui.STAMP).unlink()


def _make_writable(folder: Path) -> None:
    for current, _, _ in os.walk(folder):
        Path(current).chmod(0o755)


def _scratch_module(work: Path, copy: Path) -> None:
    """The Kubernetes/Argo CD build's go.mod and go.sum, Argo CD's module replaced by the copy."""
    kube = paths.build_dir("kube")
    for name in ("go.mod", "go.sum"):
        if not (kube / name).is_file():
            raise InfraError(
                f"the Argo CD build's scratch module is missing ({kube / name})",
                fix="run `fleetplane local build` (make build) first",
            )
        shutil.copyfile(kube / name, work / name)
    gomod = work / "go.mod"
    replace = f"\nreplace {argocd_ui.ARGOCD_MODULE} => {copy}\n"
    gomod.write_text(gomod.read_text() + replace)


def _required_version(gomod: str, module: str) -> str:
    """The version ``gomod`` requires of ``module`` ("" when it requires none)."""
    for raw in gomod.splitlines():
        fields = raw.split("//")[0].split()
        if fields[:1] == ["require"]:
            fields = fields[1:]
        if len(fields) == 2 and fields[0] == module:
            return fields[1]
    return ""


def version_ldflags(module: Path, released: str) -> list[str]:
    """The ``-X`` flags Argo CD's Makefile links a release with, from the module's files:
    ``VERSION``, the client-go it requires (``kubectlVersion``), and ``released``, the release's
    time from the module proxy (``buildDate``: the same for every build of it). The tree is the
    tagged release as published (clean); its commit is not known here."""
    values = {
        "version": (module / "VERSION").read_text().strip(),
        "buildDate": released,
        "gitTag": versions.ARGOCD,
        "gitTreeState": "clean",
        "kubectlVersion": _required_version((module / "go.mod").read_text(), _CLIENT_GO),
    }
    return [f"-X {VERSION_PACKAGE}.{name}={value}" for name, value in values.items()]


def build_command(module: Path, released: str, target: Path) -> list[str]:
    """``go build`` of Argo CD's ``cmd`` into ``target``: the components' flags plus the version."""
    flags = [f for f in build_steps.GO_FLAGS if not f.startswith("-ldflags=")]
    ldflags = [f.removeprefix("-ldflags=") for f in build_steps.GO_FLAGS if f.startswith("-ldflags=")]
    ldflags += version_ldflags(module, released)
    return [
        "go",
        "build",
        *flags,
        "-ldflags=" + " ".join(ldflags),
        "-o",
        str(target),
        f"{argocd_ui.ARGOCD_MODULE}/cmd",
    ]


def _release_time(downloaded: dict[str, str]) -> str:
    """The release's time as the module proxy gives it (its ``.info`` file), in Argo CD's format."""
    return str(json.loads(Path(downloaded["Info"]).read_text())["Time"])


@dataclass(frozen=True)
class BuiltBinary:
    path: Path
    seconds: float


def build_binary(report: Reporter = stderr_reporter) -> BuiltBinary:
    """Build :func:`binary_path` from the cached UI (every time it is asked)."""
    assets = argocd_ui.built_assets()
    if assets is None:
        raise InfraError(
            f"Argo CD's web UI is not built ({argocd_ui.assets_dir()})",
            fix=f"run `{argocd_ui.BUILD_COMMAND}` first",
        )
    build_steps.require_tool("go", "install Go >= 1.25 (https://go.dev/doc/install) and put it on PATH")
    work = paths.build_dir("argocd-with-ui") / versions.ARGOCD
    log = build_steps.fresh_log(work)
    started = time.monotonic()
    with step(report, "building argocd with the UI embedded (go build)", estimate=ESTIMATE):
        downloaded = build.go_download(argocd_ui.ARGOCD_MODULE, versions.ARGOCD, work, log)
        module = Path(downloaded["Dir"])
        copy = work / "argo-cd"
        module_copy(module, assets, copy)
        _scratch_module(work, copy)
        staging = binary_path().with_name(binary_path().name + ".new")
        build_steps.run(
            build_command(module, _release_time(downloaded), staging),
            cwd=work,
            log=log,
            what="go build argocd (UI embedded)",
            env=build_steps.go_env(),
            report=report,
        )
        staging.replace(binary_path())
        mark_built(assets)
    return BuiltBinary(binary_path(), time.monotonic() - started)
