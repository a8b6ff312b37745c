"""The bootstrap stacks' passphrase: no fixed one in the code; one random passphrase per machine
(per cache), kept owner-only under the cache and used unless the user sets their own.
"""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest

from localinfra import pulumi_cli


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FLEETPLANE_CACHE", str(tmp_path))
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE", raising=False)
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE", raising=False)
    return tmp_path


def test_the_code_carries_no_passphrase() -> None:
    assert not hasattr(pulumi_cli, "DEMO_PASSPHRASE")
    assert "fleetplane-demo" not in Path(pulumi_cli.__file__).read_text()


def test_a_random_passphrase_is_made_once_owner_only_under_the_cache(cache: Path) -> None:
    path = pulumi_cli.passphrase_file()
    assert path == cache / "pulumi-passphrase"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = path.read_text()
    assert len(first.strip()) >= 40
    assert pulumi_cli.passphrase_file().read_text() == first
    assert [p.name for p in cache.iterdir()] == ["pulumi-passphrase"]  # nothing staged is left


def test_first_uses_at_once_agree_on_one_passphrase(cache: Path) -> None:
    seen: list[str] = []
    start = threading.Barrier(6)

    def ask() -> None:
        start.wait()
        seen.append(pulumi_cli.passphrase_file().read_text())

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 6 and len(set(seen)) == 1


def test_pulumi_is_pointed_at_the_file_unless_the_user_set_a_passphrase(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = pulumi_cli.environ()
    assert env["PULUMI_CONFIG_PASSPHRASE_FILE"] == str(cache / "pulumi-passphrase")
    assert "PULUMI_CONFIG_PASSPHRASE" not in env

    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "mine")
    env = pulumi_cli.environ()
    assert env["PULUMI_CONFIG_PASSPHRASE"] == "mine" and "PULUMI_CONFIG_PASSPHRASE_FILE" not in env
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE")

    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE_FILE", "/elsewhere/passphrase")
    assert pulumi_cli.environ()["PULUMI_CONFIG_PASSPHRASE_FILE"] == "/elsewhere/passphrase"
