"""OCI image layouts made with umoci from layer tarballs, byte for byte the same from the same inputs.

A layer is written here as a tar with its entries sorted, every mtime the build's
``SOURCE_DATE_EPOCH``, owners numeric and no access or change times; umoci compresses it, adds it
to the image and writes the config, whose creation time is that same epoch and which carries no
history (history entries are stamped with the current time).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import tarfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from localinfra import build_steps
from localinfra.errors import InfraError


@dataclasses.dataclass(frozen=True)
class ImageConfig:
    user: str
    entrypoint: tuple[str, ...]
    env: tuple[str, ...]
    labels: dict[str, str]
    workdir: str = "/"


def _umoci(*args: str, log: Path) -> None:
    build_steps.run(["umoci", *args], cwd=Path("/"), log=log, what=f"umoci {args[0]}")


def write_layer(root: Path, paths: Iterable[str], dest: Path, epoch: int) -> Path:
    """A tar of ``paths`` (relative to ``root``, directories taken whole), sorted, with fixed times."""
    names: set[str] = set()
    for rel in paths:
        names.add(rel)
        top = root / rel
        if top.is_dir() and not top.is_symlink():
            names.update(str(p.relative_to(root)) for p in top.rglob("*"))
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(names):
            info = tar.gettarinfo(str(root / name), arcname=name)
            info.mtime = epoch
            info.uname = info.gname = ""
            info.pax_headers = {}
            if info.isfile():
                with open(root / name, "rb") as data:
                    tar.addfile(info, data)
            else:
                tar.addfile(info)
    return dest


def build_layout(
    layout: Path, tag: str, layers: Sequence[Path], config: ImageConfig, epoch: int, log: Path
) -> str:
    """An OCI layout at ``layout`` whose ``tag`` is an image of ``layers`` (bottom first) with
    ``config``; returns the manifest's digest."""
    image = f"{layout}:{tag}"
    created = datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    _umoci("init", "--layout", str(layout), log=log)
    _umoci("new", "--image", image, log=log)
    for layer in layers:
        _umoci("raw", "add-layer", "--no-history", "--image", image, str(layer), log=log)
    flags = [
        "--no-history",
        f"--created={created}",
        "--os=linux",
        f"--architecture={_go_arch()}",
        f"--config.user={config.user}",
        f"--config.workingdir={config.workdir}",
        "--clear=config.env",
        *(f"--config.env={e}" for e in config.env),
        "--clear=config.entrypoint",
        *(f"--config.entrypoint={e}" for e in config.entrypoint),
        "--clear=config.cmd",
        *(f"--config.label={k}={v}" for k, v in sorted(config.labels.items())),
        *(f"--manifest.annotation={k}={v}" for k, v in sorted(config.labels.items())),
    ]
    _umoci("config", "--image", image, *flags, log=log)
    _umoci("gc", "--layout", str(layout), log=log)
    return manifest_digest(layout, tag)


def manifest_digest(layout: Path, tag: str) -> str:
    index = json.loads((layout / "index.json").read_text())
    for entry in index["manifests"]:
        if entry.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
            digest: str = entry["digest"]
            return digest
    raise InfraError(f"{layout} has no image tagged {tag}")


def blob(layout: Path, digest: str) -> Path:
    algorithm, _, hex_digest = digest.partition(":")
    return layout / "blobs" / algorithm / hex_digest


def read_json(layout: Path, digest: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(blob(layout, digest).read_text())
    return loaded


def uncompressed_size(layout: Path, tag: str) -> int:
    """The bytes of the image's layers once decompressed (what it takes unpacked, give or take
    the file system's blocks)."""
    manifest = read_json(layout, manifest_digest(layout, tag))
    total = 0
    for layer in manifest["layers"]:  # type: ignore[attr-defined]
        with tarfile.open(blob(layout, layer["digest"]), "r:gz") as tar:
            total += sum(member.size for member in tar)
    return total


def _go_arch() -> str:
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
