"""The long-running processes freeze what startup allocated and collect young objects less often,
unless FLEETPLANE_GC=default asks for Python's own settings."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from fleetplane import gc_tuning


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_tuned_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(gc_tuning.ENV, raising=False)
    gc.set_threshold(700, 10, 10)
    assert gc_tuning.tune()
    assert gc.get_threshold() == (gc_tuning.GEN0_THRESHOLD, 10, 10)
    assert gc.get_freeze_count() > 0  # what startup allocated is out of every later collection


def test_default_keeps_pythons_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(gc_tuning.ENV, "default")
    gc.set_threshold(700, 10, 10)
    frozen = gc.get_freeze_count()
    assert not gc_tuning.tune()
    assert gc.get_threshold() == (700, 10, 10) and gc.get_freeze_count() == frozen
