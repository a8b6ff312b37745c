"""Two processes sharing the cache build a component once: the second waits for the first's lock,
then finds it built; a build that fails leaves it unbuilt and the lock free."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from localinfra import build_steps


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FLEETPLANE_CACHE", str(tmp_path))
    return tmp_path


def test_a_waiting_build_finds_what_the_first_built(tmp_path: Path) -> None:
    output = tmp_path / "tool"
    builds: list[str] = []
    answers: list[bool] = []

    def second() -> None:
        with build_steps.building("tool", "1.0", [output]) as needed:
            answers.append(needed)

    with build_steps.building("tool", "1.0", [output]) as needed:
        assert needed
        waiting = threading.Thread(target=second)
        waiting.start()
        time.sleep(0.3)  # time for the second to reach the lock, where it must wait
        assert answers == []
        output.write_text("built")
        builds.append("first")
    waiting.join(10)
    assert answers == [False]
    assert builds == ["first"]
    assert build_steps.is_built("tool", "1.0", [output])


def test_a_failed_build_is_not_stamped_and_frees_the_lock(tmp_path: Path) -> None:
    output = tmp_path / "tool"
    with pytest.raises(RuntimeError), build_steps.building("tool", "1.0", [output]) as needed:
        assert needed
        raise RuntimeError("compiler crashed")
    assert not build_steps.is_built("tool", "1.0", [output])
    with build_steps.building("tool", "1.0", [output]) as needed:
        assert needed
        output.write_text("built")
    with build_steps.building("tool", "1.0", [output]) as needed:
        assert not needed


def test_a_new_version_is_built_again(tmp_path: Path) -> None:
    output = tmp_path / "tool"
    output.write_text("old")
    build_steps.mark_built("tool", "1.0")
    with build_steps.building("tool", "2.0", [output]) as needed:
        assert needed
    assert build_steps.is_built("tool", "2.0", [output])
