"""The local runtime's secret files: keys, kubeconfigs (and the tokens in them) are owner-only from
the moment they exist, whatever the umask, through ``trust.files.write_private``.

Cases: a file is created 0600 under a permissive umask; an existing world-readable file is
replaced by an owner-only one; a symlink at the path is replaced, its target left alone; a local
cluster's CA key, client key, service-account signing key and kubeconfig are all 0600.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import yaml

from localinfra import kube, pki
from trust import files


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_file_is_created_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = files.write_private(tmp_path / "secret", "s3cret")
    finally:
        os.umask(old)
    assert mode(path) == 0o600 and path.read_text() == "s3cret"


def test_an_existing_world_readable_file_is_replaced_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_text("old content, longer than the new one")
    path.chmod(0o644)
    files.write_private(path, b"new")
    assert mode(path) == 0o600 and path.read_bytes() == b"new"


def test_a_symlink_is_replaced_and_its_target_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("untouched")
    link = tmp_path / "link"
    link.symlink_to(target)
    files.write_private(link, "secret")
    assert target.read_text() == "untouched"
    assert not link.is_symlink() and mode(link) == 0o600


def test_keys_and_kubeconfigs_are_owner_only(tmp_path: Path) -> None:
    ca = pki.ensure_ca(tmp_path / "pki")
    client = pki.issue(ca, tmp_path / "c1", "agent", cn="agent")
    sa = pki.service_account_keys(tmp_path / "c1")
    config = kube.kubeconfig_dict("c1", "https://127.0.0.1:1", ca.cert, client)
    kubeconfig = kube.write_kubeconfig(tmp_path / "c1" / "kubeconfig", config)
    assert {mode(p) for p in (ca.key, client.key, sa.key, kubeconfig)} == {0o600}
    assert yaml.safe_load(kubeconfig.read_text())["current-context"] == "c1"
