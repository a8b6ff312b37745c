"""fleetplane's container images, one per role, built without a container engine.

Each image is two layers: the Debian base (:mod:`localinfra.image_rootfs`, the same in every image
but the hub's, which adds git for the git generator) and the role's virtualenv with fleetplane and
its role's extra (``pip install 'fleetplane[agent]'``). An image is cached under the key of
everything it is made of (the recipe, fleetplane's source, its declared dependencies), and so are
the downloaded Debian packages and wheels: a second build of unchanged sources costs nothing, and
one from the same downloads gives the same digest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import subprocess
import tomllib
from collections.abc import Iterable, Sequence
from pathlib import Path

from localinfra import build_steps, image_rootfs, oci, paths
from localinfra.errors import InfraError
from localinfra.progress import Reporter, stderr_reporter, step

# Bumped when the way images are made changes: every cached image and base is rebuilt.
RECIPE = "1"
# The Debian layer's file times: its inputs are Debian's packages, not fleetplane's source, so it
# keeps its digest across commits (2025-01-01T00:00:00Z).
BASE_EPOCH = 1735689600
SOURCE_URL = "https://github.com/fleetplane/fleetplane"
PATH_ENV = f"PATH={image_rootfs.VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ESTIMATES = {"base": 180.0, "wheels": 60.0, "role": 60.0}


@dataclasses.dataclass(frozen=True)
class Role:
    extra: str
    # the subcommands the image exists to run
    entries: tuple[tuple[str, ...], ...]
    # Debian packages its processes run, beyond the base's
    debian: tuple[str, ...] = ()


ROLES = {
    "server": Role("server", (("maestro", "server"), ("maestro", "migrate"))),
    "agent": Role("agent", (("maestro", "agent"),)),
    # the controllers' git generator runs git
    "hub": Role("hub", (("controllers", "run"), ("provisioner", "run")), ("git",)),
}


@dataclasses.dataclass(frozen=True)
class Image:
    role: str
    name: str
    layout: Path
    tag: str
    digest: str
    # bytes of its layers, decompressed
    size: int

    @property
    def reference(self) -> str:
        """What skopeo and umoci call it: ``<layout>:<tag>``."""
        return f"{self.layout}:{self.tag}"


def source_root() -> Path:
    root = Path(__file__).resolve().parents[1]
    if not (root / "pyproject.toml").is_file():
        raise InfraError(f"{root} is not a fleetplane checkout", fix="build images from a source checkout")
    return root


def _project(root: Path) -> dict[str, object]:
    project: dict[str, object] = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    return project


def source_epoch(root: Path) -> int:
    """The last commit's time: the role layers' file times and the images' creation time."""
    out = subprocess.run(
        ["git", "-C", str(root), "log", "-1", "--format=%ct"], capture_output=True, text=True, check=False
    )
    return int(out.stdout.strip()) if out.returncode == 0 and out.stdout.strip() else BASE_EPOCH


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _source_key(root: Path) -> str:
    """The hash of what goes into fleetplane's wheel: its packages' files and its metadata."""
    project = _project(root)
    hashed = hashlib.sha256()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        hashed.update((root / name).read_bytes())
    packages = sorted({p.split("*")[0] for p in _packages(root)})
    for package in packages:
        for path in sorted((root / package).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                hashed.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return _digest(project["version"], hashed.hexdigest())


def _packages(root: Path) -> list[str]:
    config = tomllib.loads((root / "pyproject.toml").read_text())
    include: list[str] = config["tool"]["setuptools"]["packages"]["find"]["include"]
    return include


def _base_path(extra: Sequence[str]) -> Path:
    """Where the Debian layer with a role's ``extra`` packages is kept."""
    key = _digest(
        RECIPE,
        image_rootfs.SUITE,
        image_rootfs.PACKAGES,
        image_rootfs.DPKG_FILTERS,
        image_rootfs.PURGED,
        BASE_EPOCH,
        *((extra, [image_rootfs.PURGED_WITH.get(p) for p in extra]) if extra else ()),
    )
    return paths.build_dir("images") / f"debian-{key}.tar"


def _base(report: Reporter, extra: Sequence[str], *, fresh: Path | None) -> Path:
    """The Debian layer with a role's ``extra`` packages, from the cache unless ``fresh`` (a folder
    to make it in again)."""
    build = paths.build_dir("images")
    base = _base_path(extra)
    if base.exists() and not fresh:
        return base
    what = f"Debian {image_rootfs.SUITE} base{' with ' + ', '.join(extra) if extra else ''} (mmdebstrap)"
    with step(report, what, estimate=ESTIMATES["base"]):
        target = fresh / base.name if fresh else base
        target.unlink(missing_ok=True)
        image_rootfs.debian_base(target, build / "debs", BASE_EPOCH, build / "mmdebstrap.log", extra)
    return target


def _keep_only(found: Iterable[Path], *kept: Path) -> None:
    """Remove what ``found`` lists but ``kept``: what earlier inputs made, which nothing uses."""
    for path in found:
        if path not in kept:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()


def _wheels(root: Path, epoch: int, report: Reporter) -> tuple[Path, Path]:
    """The dependencies' wheels (kept while the declared dependencies stay the same) and
    fleetplane's own (kept while its source does)."""
    project = _project(root)
    build = paths.build_dir("images")
    extras = sorted(r.extra for r in ROLES.values())
    deps = (
        build
        / "wheels"
        / _digest(
            RECIPE,
            project["dependencies"],
            project["optional-dependencies"],
            image_rootfs.FOR_THE_IMAGES_PYTHON,
        )
    )
    own = build / "fleetplane-wheel" / _source_key(root)
    if not (own / ".done").exists():
        with step(report, "fleetplane's wheel", estimate=ESTIMATES["wheels"] / 4):
            shutil.rmtree(own, ignore_errors=True)
            image_rootfs.build_wheel(root, own, epoch, build / "wheel.log")
            (own / ".done").touch()
    if not (deps / ".done").exists():
        with step(report, "downloading the roles' wheels", estimate=ESTIMATES["wheels"]):
            shutil.rmtree(deps, ignore_errors=True)
            (wheel,) = own.glob("fleetplane-*.whl")
            requirement = f"fleetplane[{','.join(extras)}] @ {wheel.as_uri()}"
            image_rootfs.download_wheels(requirement, deps, build / "wheels.log")
            for copied in deps.glob("fleetplane-*.whl"):
                copied.unlink()
            (deps / ".done").touch()
    _keep_only(own.parent.iterdir(), own)
    _keep_only(deps.parent.iterdir(), deps)
    return deps, own


def images_dir() -> Path:
    return paths.cache_root() / "images"


def build_images(
    roles: Sequence[str] = tuple(ROLES),
    report: Reporter = stderr_reporter,
    *,
    out: Path | None = None,
    fresh: bool = False,
) -> list[Image]:
    """Each role's image, as an OCI layout in ``out`` (default: the cache), where the role's
    earlier images are removed. ``fresh`` builds again from the downloaded packages and wheels,
    ignoring the cached base and images (to check that the digests come out the same)."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise InfraError(
            f"no such image role: {', '.join(sorted(unknown))}", fix=f"one of {', '.join(ROLES)}"
        )
    root = source_root()
    epoch = source_epoch(root)
    version = str(_project(root)["version"])
    deps_key = _digest(_project(root)["dependencies"], _project(root)["optional-dependencies"])
    out = out or images_dir()
    wanted = {
        role: out / f"fleetplane-{role}-{_image_key(role, epoch, _source_key(root), deps_key)}"
        for role in roles
    }
    # Under the lock, no other process's build has its wheels, bases or layouts cleaned away.
    with build_steps.exclusive("images"):
        missing = [role for role, layout in wanted.items() if fresh or not _stamp(layout).exists()]
        if missing:
            _build_missing(missing, wanted, out, version, epoch, root, fresh, report)
        for role, layout in wanted.items():
            _keep_only(out.glob(f"fleetplane-{role}-*"), layout, _stamp(layout))
    return [
        Image(role, f"fleetplane-{role}", layout, version, **json.loads(_stamp(layout).read_text()))
        for role, layout in wanted.items()
    ]


def _build_missing(
    missing: Sequence[str],
    wanted: dict[str, Path],
    out: Path,
    version: str,
    epoch: int,
    root: Path,
    fresh: bool,
    report: Reporter,
) -> None:
    image_rootfs.ensure_tools(log=paths.build_dir("images") / "apt.log")
    bases = {
        ROLES[role].debian: _base(report, ROLES[role].debian, fresh=out if fresh else None)
        for role in missing
    }
    wheels = _wheels(root, epoch, report)
    for role in missing:
        _build_role(role, wanted[role], version, epoch, bases[ROLES[role].debian], wheels, report)
    if fresh:
        for base in bases.values():
            base.unlink()
    else:  # what no role uses any more
        kept = {_base_path(r.debian) for r in ROLES.values()}
        _keep_only(paths.build_dir("images").glob("debian-*.tar"), *kept)


def _image_key(role: str, epoch: int, source_key: str, deps_key: str) -> str:
    debian = ROLES[role].debian
    # a role without packages of its own keeps the key it always had
    return _digest(RECIPE, role, BASE_EPOCH, epoch, source_key, deps_key, *((debian,) if debian else ()))


def _stamp(layout: Path) -> Path:
    """A finished layout's manifest digest and size, written last: a layout without one is unfinished."""
    return layout.with_name(layout.name + ".json")


def _build_role(
    role: str,
    layout: Path,
    version: str,
    epoch: int,
    base: Path,
    wheels: Sequence[Path],
    report: Reporter,
) -> None:
    work = paths.build_dir("images") / f"work-{layout.name}"
    log = paths.build_dir("images") / f"{layout.name}.log"
    log.unlink(missing_ok=True)
    with step(report, f"image fleetplane-{role} {version}", estimate=ESTIMATES["role"]):
        rootfs = work / "rootfs"
        held = image_rootfs.install_role(rootfs, base, wheels, f"fleetplane[{ROLES[role].extra}]", epoch, log)
        layer = oci.write_layer(rootfs, held, work / "role.tar", epoch)
        _stamp(layout).unlink(missing_ok=True)
        if layout.exists():
            shutil.rmtree(layout)
        config = oci.ImageConfig(
            user=f"{image_rootfs.USER[1]}:{image_rootfs.USER[1]}",
            entrypoint=(f"{image_rootfs.VENV}/bin/fleetplane",),
            env=(PATH_ENV, "PYTHONUNBUFFERED=1"),
            labels={
                "org.opencontainers.image.source": SOURCE_URL,
                "org.opencontainers.image.version": version,
                "org.opencontainers.image.title": f"fleetplane-{role}",
            },
        )
        digest = oci.build_layout(layout, version, [base, layer], config, epoch, log)
        shutil.rmtree(work)
        size = oci.uncompressed_size(layout, version)
        _stamp(layout).write_text(json.dumps({"digest": digest, "size": size}))
