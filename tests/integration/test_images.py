"""fleetplane's role images (docs/images.md), built by ``fleetplane local image`` without a
container engine, run with runc as their configured user.

Cases: each image runs ``fleetplane --version`` and its role's entries' ``--help`` in its own file
system, as uid 65532, and every shared library in it loads; its config names that user, the
``fleetplane`` entrypoint and the source and version labels; it holds no compiler, no pip and no
apt, and its manifest (/opt/fleetplane/packages.txt) lists its Debian packages and Python
distributions; the hub runs git (its https transport included, its Perl left out) and the others
hold none; the agent holds neither pulumi, boto3 nor a Kubernetes client library, is under
200 MB, and a command of another role says which extra it needs; a second build is a cache hit; a
fresh build from the same downloads has the same digests; the images go to a local registry over
TLS from the platform CA and come back the same.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from localinfra import image, image_rootfs, oci, paths, registry
from trust import authority

pytestmark = pytest.mark.integration

UID = 65532
_ids = itertools.count()


@pytest.fixture(scope="module")
def images() -> dict[str, image.Image]:
    image_rootfs.ensure_tools(
        ("mmdebstrap", "umoci", "skopeo", "runc"), log=paths.build_dir("images") / "apt.log"
    )
    started = time.monotonic()
    built = image.build_images()
    print(f"images built (or found in the cache) in {time.monotonic() - started:.1f}s")
    for item in built:
        print(f"{item.name}: {item.size / 1e6:.0f} MB, {item.digest}")
    return {item.role: item for item in built}


@pytest.fixture(scope="module")
def bundles(images: dict[str, image.Image], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each image unpacked (``umoci unpack``): a runtime bundle, its rootfs and config.json."""
    folder = tmp_path_factory.mktemp("bundles")
    unpacked = {}
    for role, item in images.items():
        bundle = folder / role
        subprocess.run(["umoci", "unpack", "--image", item.reference, str(bundle)], check=True)
        unpacked[role] = bundle
    return unpacked


ENTRYPOINT = "/opt/fleetplane/bin/fleetplane"
PYTHON = "/opt/fleetplane/bin/python"
# Loads every shared library of the image's Python (extension modules and the libraries wheels
# carry): one that needs a system library the image lacks fails.
_LOAD_ALL = """
import ctypes, pathlib, sys
venv = sorted(pathlib.Path(sys.prefix).rglob("*.so*"))
stdlib = sorted(pathlib.Path(sys.base_prefix, "lib").glob("python3*/lib-dynload/*.so"))
for path in venv + stdlib:
    ctypes.CDLL(str(path))
"""


def run_in(bundle: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` with runc in the image's file system, as its user, with its environment."""
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"] |= {"args": argv, "terminal": False}
    (bundle / "config.json").write_text(json.dumps(spec))
    command = ["runc", "run", "--bundle", str(bundle), f"fleetplane-test-{bundle.name}-{next(_ids)}"]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_each_image_runs_its_role_as_its_user(
    images: dict[str, image.Image], bundles: dict[str, Path]
) -> None:
    for role, bundle in bundles.items():
        version = run_in(bundle, ENTRYPOINT, "--version")
        assert version.returncode == 0, version.stderr
        assert version.stdout.strip() == f"fleetplane {images[role].tag}"
        for entry in image.ROLES[role].entries:
            helped = run_in(bundle, ENTRYPOINT, *entry, "--help")
            assert helped.returncode == 0, f"{role}: {entry}: {helped.stderr}"
            assert "Usage:" in helped.stdout and "Not installed" not in helped.stdout, helped.stdout
        whoami = run_in(bundle, PYTHON, "-c", "import os; print(os.getuid(), os.getgid())")
        assert whoami.stdout.split() == [str(UID), str(UID)]


def test_every_shared_library_loads(bundles: dict[str, Path]) -> None:
    for role, bundle in bundles.items():
        loaded = run_in(bundle, PYTHON, "-c", _LOAD_ALL)
        assert loaded.returncode == 0, f"{role}: {loaded.stderr}"


def test_config_names_user_entrypoint_and_labels(images: dict[str, image.Image]) -> None:
    for item in images.values():
        manifest = oci.read_json(item.layout, item.digest)
        config = oci.read_json(item.layout, manifest["config"]["digest"])["config"]  # type: ignore[index]
        assert config["User"] == f"{UID}:{UID}"  # type: ignore[index]
        assert config["Entrypoint"] == ["/opt/fleetplane/bin/fleetplane"]  # type: ignore[index]
        assert any(e.startswith("PATH=/opt/fleetplane/bin:") for e in config["Env"])  # type: ignore[index]
        labels = config["Labels"]  # type: ignore[index]
        assert labels["org.opencontainers.image.version"] == item.tag
        assert labels["org.opencontainers.image.source"] == image.SOURCE_URL


def test_no_compiler_pip_or_apt(bundles: dict[str, Path]) -> None:
    for role, bundle in bundles.items():
        rootfs = bundle / "rootfs"
        for tool in ("gcc", "cc", "pip", "pip3", "apt", "apt-get"):
            for folder in ("usr/bin", "usr/local/bin", "opt/fleetplane/bin"):
                assert not (rootfs / folder / tool).exists(), f"{role} holds {folder}/{tool}"
        assert not list((rootfs / image_rootfs.SITE_PACKAGES.lstrip("/")).glob("pip*")), role
        no_pip = run_in(bundle, PYTHON, "-m", "pip", "--version")
        assert no_pip.returncode != 0 and "No module named pip" in no_pip.stderr
        manifest = (rootfs / "opt/fleetplane/packages.txt").read_text()
        assert "python3.11 " in manifest and "\nfleetplane 0" in manifest and "\ngrpcio " in manifest


def test_the_hub_runs_git_and_the_others_hold_none(bundles: dict[str, Path]) -> None:
    """The controllers' git generator fetches with git; git's Perl is left out, and so is git elsewhere."""
    fetched = run_in(bundles["hub"], "/usr/bin/git", "--version")
    assert fetched.returncode == 0 and fetched.stdout.startswith("git version"), fetched.stderr
    remote = bundles["hub"] / "rootfs/usr/lib/git-core/git-remote-https"
    assert remote.exists(), "git's https transport"
    assert not (bundles["hub"] / "rootfs/usr/bin/perl").exists()
    for role in ("agent", "server"):
        assert not (bundles[role] / "rootfs/usr/bin/git").exists(), role


def test_agent_holds_only_its_role(bundles: dict[str, Path], images: dict[str, image.Image]) -> None:
    assert images["agent"].size < 200_000_000, f"the agent image is {images['agent'].size / 1e6:.0f} MB"
    site = bundles["agent"] / "rootfs" / image_rootfs.SITE_PACKAGES.lstrip("/")
    assert not list(site.glob("pulumi*")) and not list(site.glob("boto*")) and not list(site.glob("kopf*"))
    assert not list(site.glob("psycopg*")) and not list(site.glob("kubernetes*"))
    other = run_in(bundles["agent"], ENTRYPOINT, "controllers", "run", "--help")
    assert other.returncode == 0 and "Not installed" in other.stdout and "hub" in other.stdout
    refused = run_in(bundles["agent"], ENTRYPOINT, "controllers", "run")
    assert refused.returncode == 1 and "pip install 'fleetplane[hub]'" in refused.stderr


def test_a_second_build_is_a_cache_hit(images: dict[str, image.Image]) -> None:
    started = time.monotonic()
    again = image.build_images()
    assert time.monotonic() - started < 10
    assert {i.role: i.digest for i in again} == {r: i.digest for r, i in images.items()}


def test_a_fresh_build_has_the_same_digests(images: dict[str, image.Image], tmp_path: Path) -> None:
    started = time.monotonic()
    fresh = image.build_images(out=tmp_path, fresh=True)
    print(f"fresh build from the downloaded packages and wheels: {time.monotonic() - started:.1f}s")
    assert {i.role: i.digest for i in fresh} == {r: i.digest for r, i in images.items()}


@pytest.fixture
def local_registry(tmp_path: Path) -> Iterator[registry.Registry]:
    ca = authority.CertificateAuthority.ensure(tmp_path / "pki")
    running = registry.start(tmp_path / "registry", ca)
    try:
        yield running
    finally:
        running.stop()


def _skopeo(*args: str) -> str:
    done = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_push_to_and_pull_from_a_local_registry(
    images: dict[str, image.Image], local_registry: registry.Registry, tmp_path: Path
) -> None:
    certs = str(local_registry.certs_dir())
    for item in images.values():
        remote = f"docker://{local_registry.address}/fleetplane/{item.name}:{item.tag}"
        _skopeo("copy", "--dest-cert-dir", certs, f"oci:{item.reference}", remote)
        inspected = json.loads(_skopeo("inspect", "--cert-dir", certs, remote))
        assert inspected["Labels"]["org.opencontainers.image.version"] == item.tag
        assert inspected["Digest"] == item.digest
        back = tmp_path / "pulled" / item.name
        back.parent.mkdir(exist_ok=True)
        _skopeo("copy", "--src-cert-dir", certs, remote, f"oci:{back}:{item.tag}")
        assert oci.manifest_digest(back, item.tag) == item.digest
