"""The dynamic provider behind every local part: what ``pulumi up``/``refresh``/``destroy`` do.

Cases: create starts the part and returns its inputs and outputs; an unchanged, alive part has no
diff (a second ``up`` changes nothing); a dead part is drift (``read`` says so, ``diff`` asks for
an update) and the update restarts it, passing the outputs it replaces; a changed input is an
update, a changed environment folder a replacement; delete stops it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bootstrap import local_components
from bootstrap.local_resources import LocalPartProvider


class FakePart:
    """A part whose process is a flag; records what the provider asked of it."""

    def __init__(self) -> None:
        self.alive = False
        self.calls: list[tuple[str, Any]] = []

    def component(self) -> local_components.Component:
        return local_components.Component(self.start, self.running, self.stop)

    def start(self, root: Path, inputs: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("start", previous.get("address")))
        self.alive = True
        return {"address": "127.0.0.1:1234"}

    def running(self, root: Path, outputs: dict[str, Any]) -> bool:
        return self.alive

    def stop(self, root: Path) -> None:
        self.calls.append(("stop", root))
        self.alive = False


@pytest.fixture
def part(monkeypatch: pytest.MonkeyPatch) -> FakePart:
    fake = FakePart()
    monkeypatch.setitem(local_components.COMPONENTS, "fake", fake.component())
    return fake


NEWS = {"environment": "/tmp/env", "port": 0, "running": None, "__provider": "pickled"}


def test_create_returns_inputs_and_outputs(part: FakePart) -> None:
    created = LocalPartProvider("fake").create(dict(NEWS))
    assert created.id == "fake"
    assert created.outs == {
        "environment": "/tmp/env",
        "port": 0,
        "running": True,
        "address": "127.0.0.1:1234",
    }


def test_alive_and_unchanged_is_no_change(part: FakePart) -> None:
    provider = LocalPartProvider("fake")
    olds = provider.create(dict(NEWS)).outs
    assert provider.diff("fake", olds, dict(NEWS)).changes is False
    assert provider.read("fake", olds).outs["running"] is True


def test_a_dead_part_is_drift_and_update_restarts_it(part: FakePart) -> None:
    provider = LocalPartProvider("fake")
    olds = provider.create(dict(NEWS)).outs
    part.alive = False
    refreshed = provider.read("fake", olds).outs
    assert refreshed["running"] is False
    diff = provider.diff("fake", refreshed, dict(NEWS))
    assert diff.changes is True and not diff.replaces
    updated = provider.update("fake", refreshed, dict(NEWS)).outs
    assert updated["running"] is True
    assert part.calls[-2:] == [("stop", Path("/tmp/env")), ("start", "127.0.0.1:1234")]


def test_changed_inputs_update_and_a_new_folder_replaces(part: FakePart) -> None:
    provider = LocalPartProvider("fake")
    olds = provider.create(dict(NEWS)).outs
    assert provider.diff("fake", olds, {**NEWS, "port": 18090}).changes is True
    moved = provider.diff("fake", olds, {**NEWS, "environment": "/tmp/other"})
    assert moved.replaces == ["environment"] and moved.delete_before_replace


def test_delete_stops_the_part(part: FakePart) -> None:
    provider = LocalPartProvider("fake")
    olds = provider.create(dict(NEWS)).outs
    provider.delete("fake", olds)
    assert part.alive is False


def test_demo_claims_select_the_demo_applicationset() -> None:
    docs = local_components.claims("file:///repo", 2)
    assert docs[0] == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}
    assert [d["metadata"]["name"] for d in docs[1:]] == ["demo-1", "demo-2"]
    params = docs[1]["spec"]["parameters"]
    assert params["labels"] == {"demo": "true"}
    assert params["apps"] == {"repoURL": "file:///repo", "path": "apps/platform"}
    assert params["provider"] == "local"
