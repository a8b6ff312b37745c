"""Upstream Maestro built from its sources: a driver of its own Go clients (the interop tests, the
publish benchmark) and its server (the publish benchmark runs it side by side with fleetplane's).

The Go module proxy refuses ``open-cluster-management.io`` modules, so the driver's module replaces
each with a tree exported from its public repository at the exact revision upstream Maestro's
go.mod names (a pseudo-version's commit, or a tag); every other module comes from the proxy as
usual. The driver is a module of its own; the server is upstream's module with ``replace``
directives added. The git directories of the repositories are given; nothing is cloned here.

    python -m localinfra.upstream_maestro --git openshift-online/maestro=DIR \\
        --git open-cluster-management-io/sdk-go=DIR --git open-cluster-management-io/api=DIR \\
        --git open-cluster-management-io/ocm=DIR --git open-cluster-management-io/addon-framework=DIR
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path

from localinfra import build_steps, paths, versions
from localinfra.errors import InfraError
from localinfra.progress import Reporter, stderr_reporter, step

NAME = "maestro-interop-driver"
#: upstream Maestro's own server, for the side-by-side publish benchmark
SERVER_NAME = "maestro-upstream-server"
MAESTRO_REPO = "openshift-online/maestro"
#: module path -> the repository holding it
OCM_MODULES = {
    "open-cluster-management.io/api": "open-cluster-management-io/api",
    "open-cluster-management.io/sdk-go": "open-cluster-management-io/sdk-go",
    "open-cluster-management.io/ocm": "open-cluster-management-io/ocm",
    "open-cluster-management.io/addon-framework": "open-cluster-management-io/addon-framework",
}
_PSEUDO = re.compile(r"-(?:0\.)?\d{14}-([0-9a-f]{12})$")


def binary() -> Path:
    return paths.bin_dir() / NAME


def server_binary() -> Path:
    return paths.bin_dir() / SERVER_NAME


def revision(version: str) -> str:
    """The git revision of a module version: a pseudo-version's commit, else the tag itself."""
    found = _PSEUDO.search(version)
    return found.group(1) if found else version


def required(go_mod: str, module: str) -> str | None:
    """The version ``go_mod`` requires of ``module`` (None when it names none)."""
    found = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(\S+)", go_mod, re.MULTILINE)
    return found.group(1) if found else None


def _version(go_mod_text: str, module: str) -> str:
    version = required(go_mod_text, module)
    if version is None:
        raise InfraError(f"no version of {module} is named", fix="check upstream Maestro's go.mod")
    return version


def _git(git_dir: Path, *args: str) -> str:
    done = subprocess.run(["git", f"--git-dir={git_dir}", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise InfraError(
            f"git {' '.join(args)} in {git_dir} failed: {done.stderr.strip()}",
            fix="give the git directory of a full clone of the repository",
        )
    return done.stdout


def _export(git_dir: Path, rev: str, into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", f"--git-dir={git_dir}", "archive", "--format=tar", rev], capture_output=True, check=False
    )
    if archive.returncode != 0:
        raise InfraError(
            f"{git_dir} has no revision {rev}: {archive.stderr.decode().strip()}",
            fix="fetch the repository's full history (tags included)",
        )
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)


def go_mod(maestro_go_mod: str) -> str:
    """The driver's module: upstream Maestro and the open-cluster-management.io modules from the
    exported trees."""
    go = re.search(r"^go\s+(\S+)", maestro_go_mod, re.MULTILINE)
    lines = [
        "module fleetplane.local/maestro-interop-driver",
        "",
        f"go {go.group(1) if go else '1.25'}",
        "",
        "require github.com/openshift-online/maestro v0.0.0",
        "",
        "replace github.com/openshift-online/maestro => ./src/maestro",
    ]
    lines += [f"replace {module} => ./src/{module.rsplit('/', 1)[1]}" for module in OCM_MODULES]
    return "\n".join(lines) + "\n"


def export_sources(git_dirs: Mapping[str, Path], into: Path, report: Reporter) -> str:
    """Export upstream Maestro at the pinned commit into ``into/maestro`` and each
    open-cluster-management.io module at the revision its go.mod names into ``into/<name>``;
    answers Maestro's go.mod."""
    missing = [repo for repo in (MAESTRO_REPO, *OCM_MODULES.values()) if repo not in git_dirs]
    if missing:
        raise InfraError(
            f"no git directory for {', '.join(missing)}", fix="give --git OWNER/NAME=DIR for each"
        )
    shutil.rmtree(into, ignore_errors=True)
    maestro = git_dirs[MAESTRO_REPO]
    upstream_go_mod = _git(maestro, "show", f"{versions.UPSTREAM_MAESTRO}:go.mod")
    with step(report, "exporting upstream Maestro and the open-cluster-management.io modules", estimate=20):
        _export(maestro, versions.UPSTREAM_MAESTRO, into / "maestro")
        ocm = "open-cluster-management.io/ocm"
        ocm_go_mod = _git(
            git_dirs[OCM_MODULES[ocm]], "show", f"{revision(_version(upstream_go_mod, ocm))}:go.mod"
        )
        for module, repo in OCM_MODULES.items():
            # One that Maestro's go.mod does not name is a dependency of ocm's: at ocm's version of it.
            version = required(upstream_go_mod, module) or _version(ocm_go_mod, module)
            _export(git_dirs[repo], revision(version), into / module.rsplit("/", 1)[1])
    return upstream_go_mod


def server_replaces() -> list[str]:
    """``go mod edit`` arguments pointing upstream's own module (exported next to them) at the
    exported open-cluster-management.io trees."""
    return [f"-replace={module}=../{module.rsplit('/', 1)[1]}" for module in OCM_MODULES]


def _build(
    name: str,
    target: Path,
    git_dirs: Mapping[str, Path],
    report: Reporter,
    prepare: Callable[[Path, str], tuple[Path, list[list[str]]]],
    version: str = versions.UPSTREAM_MAESTRO,
) -> Path:
    """Export the sources, let ``prepare`` lay out the module (it answers the folder to build in
    and the go commands to run there), run them; once per ``version``."""
    with build_steps.building(name, version, [target]) as needed:
        if not needed:
            return target
        build_steps.require_tool("go", "install Go >= 1.25 (https://go.dev/doc/install) and put it on PATH")
        work = paths.build_dir(name)
        upstream_go_mod = export_sources(git_dirs, work / "src", report)
        folder, commands = prepare(work, upstream_go_mod)
        log = work / "build.log"
        # Upstream names its own Go release; an older local Go fetches that toolchain.
        env = {**build_steps.go_env(), "GOTOOLCHAIN": "auto"}
        with step(report, f"building {name} from upstream Maestro's sources", estimate=600):
            for argv in commands:
                build_steps.run(
                    argv, cwd=folder, log=log, what=f"{' '.join(argv[:2])} ({name})", env=env, report=report
                )
        # The compiled packages stay in Go's build cache; the exported trees are made again for a rebuild.
        shutil.rmtree(work / "src", ignore_errors=True)
    return target


def ensure_driver(git_dirs: Mapping[str, Path], report: Reporter = stderr_reporter) -> Path:
    """Build the driver (once per pinned upstream commit and driver source) and answer its path."""
    target = binary()
    source = resources.files(__package__).joinpath("driver.go").read_text()

    def prepare(work: Path, upstream_go_mod: str) -> tuple[Path, list[list[str]]]:
        (work / "go.mod").write_text(go_mod(upstream_go_mod))
        (work / "driver.go").write_text(source)
        build = ["go", "build", *build_steps.GO_FLAGS, "-o", str(target), "."]
        return work, [["go", "mod", "tidy"], build]

    version = f"{versions.UPSTREAM_MAESTRO}+{hashlib.sha256(source.encode()).hexdigest()[:12]}"
    return _build(NAME, target, git_dirs, report, prepare, version)


def ensure_server(git_dirs: Mapping[str, Path], report: Reporter = stderr_reporter) -> Path:
    """Build upstream Maestro's ``maestro`` command (server, migration) unchanged, its
    open-cluster-management.io modules replaced by the exported trees; answer its path."""
    target = server_binary()

    def prepare(work: Path, upstream_go_mod: str) -> tuple[Path, list[list[str]]]:
        build = ["go", "build", "-mod=mod", *build_steps.GO_FLAGS, "-o", str(target), "./cmd/maestro"]
        return work / "src" / "maestro", [["go", "mod", "edit", *server_replaces()], build]

    return _build(SERVER_NAME, target, git_dirs, report, prepare)
