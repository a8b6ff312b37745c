"""The file systems of fleetplane's images: a Debian base made by mmdebstrap, and a role's virtualenv
installed into a copy of it from wheels downloaded on the host.

The base holds Debian's essential packages, Python and the CA certificates, nothing else: no apt, no
compiler, no documentation but the copyright files. The virtualenv (``/opt/fleetplane``) is
installed by a pip run from its wheel outside the image, so pip never lands in it. Both steps need
root (mmdebstrap's root mode, chroot).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from localinfra import build_steps
from localinfra.errors import InfraError

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# What the images run on. Python is bookworm's 3.11, the version the wheels are downloaded for;
# the wheels carry their C libraries (libpq, librdkafka, OpenSSL) but for the C++ runtime (grpcio).
PACKAGES = ("python3", "ca-certificates", "libstdc++6")
# Left out of every package as it is unpacked: documentation (but copyright files) and glibc's
# iconv modules (Python's codecs are its own).
DPKG_FILTERS = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/lib/x86_64-linux-gnu/gconv/*",
)
# What a role's packages pull in that the role never runs, removed with the essential packages
# below: git's Perl (its fetches, ls-tree and cat-file are C; Perl serves git-svn, send-email and
# the like) and its manual pages (filtered out anyway).
PURGED_WITH = {"git": ("git-man", "liberror-perl", "perl", "perl-modules-5.36")}
# Essential packages that only installing packages needs, removed once the base is made (the
# images install nothing): about 30 MB. dash, coreutils, grep, sed and findutils stay, for a
# shell to look around in a running container.
PURGED = (
    "bash",
    "bsdutils",
    "diffutils",
    "hostname",
    "login",
    "ncurses-bin",
    "sysvinit-utils",
    "tar",
    "util-linux",
    "util-linux-extra",
    # last: the others' removal scripts run perl (update-rc.d)
    "perl-base",
)
# Wheels for the images' interpreter (bookworm's glibc 2.36), whatever the host's: pip takes each
# platform tag literally, so every manylinux tag glibc 2.36 runs is listed.
_WHEEL_TARGET = (
    "--only-binary=:all:",
    "--implementation=cp",
    "--python-version=3.11",
    "--abi=cp311",
    *(f"--platform=manylinux_2_{minor}_x86_64" for minor in range(36, 4, -1)),
    *(f"--platform=manylinux{legacy}_x86_64" for legacy in ("2014", "2010", "1")),
)
# pip evaluates environment markers on the host's Python, not the target's: what the images'
# Python (bookworm's 3.11.2) needs that a newer host's leaves out (redis asks for async-timeout
# below 3.11.3) is downloaded too. The install inside the image takes only what it needs.
FOR_THE_IMAGES_PYTHON = ("async-timeout>=4.0.3",)
VENV = "/opt/fleetplane"
SITE_PACKAGES = f"{VENV}/lib/python3.11/site-packages"
USER = ("fleetplane", 65532)


def run(argv: Sequence[str], *, log: Path, what: str, env: dict[str, str] | None = None) -> None:
    build_steps.run(argv, cwd=Path("/"), log=log, what=what, env=env)


def ensure_tools(tools: Sequence[str] = ("mmdebstrap", "umoci"), *, log: Path) -> None:
    """The Debian packages of ``tools`` (each named as its package), installed when missing."""
    if os.geteuid() != 0:
        raise InfraError("building images needs root (mmdebstrap's root mode, chroot)", fix="run it as root")
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        run(["apt-get", "update", "-q"], log=log, what="apt-get update", env=env)
        run(["apt-get", "install", "-y", "-q", *missing], log=log, what="apt-get install", env=env)


def debian_base(dest: Path, debs: Path, epoch: int, log: Path, extra: Sequence[str] = ()) -> Path:
    """The Debian layer as a tar, from ``debs`` (the downloaded packages, reused) and the mirror,
    with ``PACKAGES`` and a role's ``extra`` packages."""
    purged = [p for package in extra for p in PURGED_WITH.get(package, ())] + list(PURGED)
    debs.mkdir(parents=True, exist_ok=True)
    partial = dest.with_suffix(".partial")
    run(
        [
            "mmdebstrap",
            "--mode=root",
            "--variant=essential",
            f"--include={','.join((*PACKAGES, *extra))}",
            "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
            *(f"--dpkgopt={f}" for f in DPKG_FILTERS),
            "--skip=download/empty",
            "--skip=essential/unlink",
            '--setup-hook=mkdir -p "$1"/var/cache/apt/archives',
            f"--setup-hook=sync-in {debs} /var/cache/apt/archives",
            f"--customize-hook=sync-out /var/cache/apt/archives {debs}",
            '--customize-hook=chroot "$1" dpkg --purge --force-remove-essential --force-depends '
            + " ".join(purged),
            "--format=tar",
            SUITE,
            str(partial),
            MIRROR,
        ],
        log=log,
        what="mmdebstrap",
        env={"SOURCE_DATE_EPOCH": str(epoch)},
    )
    partial.rename(dest)
    return dest


def download_wheels(requirement: str, dest: Path, log: Path) -> None:
    """Every wheel ``requirement`` needs, for the images' Python, with pip's own wheel in ``dest/pip``."""
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    wanted = [requirement, *FOR_THE_IMAGES_PYTHON]
    run([*pip, "download", *_WHEEL_TARGET, "--dest", str(dest), *wanted], log=log, what="pip download")
    run(
        [*pip, "download", *_WHEEL_TARGET, "--no-deps", "--dest", str(dest / "pip"), "pip"],
        log=log,
        what="pip download pip",
    )


def build_wheel(source: Path, dest: Path, epoch: int, log: Path) -> Path:
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    run(
        [*pip, "wheel", "--no-deps", "--wheel-dir", str(dest), str(source)],
        log=log,
        what="building fleetplane's wheel",
        env={"SOURCE_DATE_EPOCH": str(epoch)},
    )
    (wheel,) = dest.glob("fleetplane-*.whl")
    return wheel


def _chroot(rootfs: Path, argv: Sequence[str], *, log: Path, what: str, epoch: int) -> None:
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "LC_ALL": "C.UTF-8",
        "SOURCE_DATE_EPOCH": str(epoch),
        "PYTHONHASHSEED": "0",
    }
    # a fixed umask: the layer records each file's mode
    script = f"umask 022; exec {shlex.join(argv)}"
    run(
        ["env", "-i", *(f"{k}={v}" for k, v in env.items()), "chroot", str(rootfs), "/bin/sh", "-c", script],
        log=log,
        what=what,
    )


def install_role(
    rootfs: Path, base: Path, wheel_dirs: Sequence[Path], requirement: str, epoch: int, log: Path
) -> list[str]:
    """Unpack ``base`` at ``rootfs``, add the image's user and install ``requirement`` into the
    virtualenv; returns the paths the role's layer holds."""
    if rootfs.exists():
        shutil.rmtree(rootfs)
    rootfs.mkdir(parents=True)
    run(["tar", "--numeric-owner", "-xpf", str(base), "-C", str(rootfs)], log=log, what="unpacking the base")
    name, uid = USER
    with open(rootfs / "etc/passwd", "a") as passwd:
        passwd.write(f"{name}:x:{uid}:{uid}:{name}:/nonexistent:/usr/sbin/nologin\n")
    with open(rootfs / "etc/group", "a") as group:
        group.write(f"{name}:x:{uid}:\n")
    stage = rootfs / "tmp" / "wheels"
    for source in wheel_dirs:
        shutil.copytree(source, stage, dirs_exist_ok=True)
    (pip_wheel,) = (stage / "pip").glob("pip-*.whl")
    _chroot(
        rootfs, ["/usr/bin/python3", "-m", "venv", "--without-pip", VENV], log=log, what="venv", epoch=epoch
    )
    _chroot(
        rootfs,
        [
            f"{VENV}/bin/python",
            f"/tmp/wheels/pip/{pip_wheel.name}/pip",
            "install",
            "--no-index",
            "--find-links=/tmp/wheels",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--root-user-action=ignore",
            requirement,
        ],
        log=log,
        what=f"pip install {requirement}",
        epoch=epoch,
    )
    shutil.rmtree(stage)
    (rootfs / VENV.lstrip("/") / "packages.txt").write_text(_manifest(rootfs))
    return ["etc/group", "etc/passwd", VENV.lstrip("/")]


def _manifest(rootfs: Path) -> str:
    """The Debian packages and Python distributions the image holds, with their versions."""
    debian = subprocess.run(
        ["chroot", str(rootfs), "dpkg-query", "-W", "-f", "${Package} ${Version}\\n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    python = subprocess.run(
        [
            "chroot",
            str(rootfs),
            f"{VENV}/bin/python",
            "-c",
            "import importlib.metadata as m\n"
            "print('\\n'.join(sorted(f'{d.name} {d.version}' for d in m.distributions())))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return (
        f"# Debian {SUITE} packages ({MIRROR})\n{''.join(sorted(debian.splitlines(keepends=True)))}"
        f"# Python distributions in {VENV}\n{python}"
    )
