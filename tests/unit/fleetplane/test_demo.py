"""The demo's pure parts: how a hub Application becomes a table row, and when each case passes.

Cases: an error condition is shown before other conditions and flagged; without conditions the last
operation's message is shown; case 1 needs every Application Unknown with an error and no
configmap1; case 2 needs every Application Synced/Healthy and configmap1 everywhere; case 3 needs
everything gone, and a failed read never counts as gone. A wait that times out names what was
expected, what was last seen and the logs; a process of the environment that died stops the wait
at once with its log (the provisioned clusters' processes included).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from rich.console import Console

from controllers import contract
from fleetplane.demo.journey import Stage, application_set, cases, wait_for
from fleetplane.demo.view import AppRow, Snapshot, app_row
from localinfra import kube, process
from localinfra.environment import Environment
from localinfra.errors import InfraError

APPS = ["worker-1-configmap1", "worker-2-configmap1"]
SHOWN = ["kubectl apply -f appset.yaml", "kubectl apply -f appset.yaml", "kubectl delete -f appset.yaml"]


def make_stage(folder: Path, dead: Callable[[], list[process.ProcessRecord]]) -> Stage:
    hub = kube.Cluster("hub", "https://127.0.0.1:1", folder / "hub")
    return Stage(hub, [], "file:///repo", folder, {"controllers": folder / "controllers.log"}, dead)


def hub_app(name: str, status: Mapping[str, object]) -> dict[str, object]:
    return {
        "metadata": {
            "name": name,
            "labels": {contract.LABEL_CLUSTER: name.removesuffix("-configmap1")},
        },
        "spec": {"destination": {"name": "ignored"}},
        "status": status,
    }


def row(name: str, sync: str, health: str = "Healthy", *, error: bool = False) -> AppRow:
    return AppRow(name, name[:8], sync, health, "ComparisonError: x" if error else "", "configmap1", error)


def test_error_condition_is_shown_first_and_flagged() -> None:
    status = {
        "sync": {"status": "Unknown"},
        "health": {"status": "Healthy"},
        "conditions": [
            {"type": "PropagationWarning", "message": "slow"},
            {"type": "ComparisonError", "message": "repository not found"},
        ],
    }
    got = app_row(hub_app("worker-1-configmap1", status))
    assert (got.cluster, got.sync, got.health) == ("worker-1", "Unknown", "Healthy")
    assert got.message == "ComparisonError: repository not found" and got.error


def test_operation_message_without_conditions() -> None:
    status = {"sync": {"status": "Synced"}, "operationState": {"message": "successfully synced"}}
    got = app_row(hub_app("worker-2-configmap1", status))
    assert (got.message, got.error, got.health) == ("successfully synced", False, "-")


def test_case_conditions() -> None:
    one, two, three = cases(APPS, SHOWN)
    absent = {"worker-1": False, "worker-2": False}
    present = {"worker-1": True, "worker-2": True}
    unknown = [row(a, "Unknown", error=True) for a in APPS]
    assert one.passed(Snapshot(unknown, True, absent))
    assert not one.passed(Snapshot(unknown[:1], True, absent))
    assert not one.passed(Snapshot([row(a, "Unknown") for a in APPS], True, absent))

    synced = [row(a, "Synced") for a in APPS]
    assert two.passed(Snapshot(synced, True, present))
    assert not two.passed(Snapshot(synced, True, {"worker-1": True, "worker-2": False}))
    assert not two.passed(
        Snapshot([row(APPS[0], "Synced"), row(APPS[1], "Synced", "Progressing")], True, present)
    )

    assert three.passed(Snapshot([], False, absent))
    assert not three.passed(Snapshot([], True, absent))
    assert not three.passed(Snapshot(synced[:1], False, absent))
    assert not three.passed(Snapshot(error="connection refused"))


def test_application_set_is_opted_in_and_selects_the_demo_clusters() -> None:
    appset = application_set("file:///repo")
    assert appset["metadata"]["labels"] == {contract.PULL_LABEL: "true"}
    template = appset["spec"]["template"]
    assert template["spec"]["source"]["repoURL"] == "file:///repo"


def test_a_case_not_passing_in_time_names_what_was_expected_and_seen(tmp_path: Path) -> None:
    one = cases(APPS, SHOWN)[0]
    seen = Snapshot([row(APPS[0], "OutOfSync")], True, {"worker-1": False})
    stage = make_stage(tmp_path, lambda: [])
    console = Console(file=io.StringIO())
    with pytest.raises(InfraError) as failed:
        wait_for(one, lambda: seen, stage, console, timeout=0.5)
    message = str(failed.value)
    assert "case 1 did not pass within" in message
    assert one.expect in message
    assert f"hub Application {APPS[0]}: sync=OutOfSync" in message
    assert str(tmp_path / "controllers.log") in message


def test_a_dead_process_stops_the_wait_with_its_log(tmp_path: Path) -> None:
    one = cases(APPS, SHOWN)[0]
    env = Environment(tmp_path / "env")
    log = tmp_path / "agent.log"
    log.write_text("boom: cannot reach Kafka\n")
    env.child("provisioned").add_process(
        process.ProcessRecord("worker-1/maestro-agent", 2**22 + 7, 1, ("agent",), str(log))
    )
    stage = make_stage(tmp_path, lambda: [r for r in env.all_processes() if not process.is_alive(r)])
    with pytest.raises(InfraError) as failed:
        wait_for(one, Snapshot, stage, Console(file=io.StringIO()), timeout=60)
    message = str(failed.value)
    assert "worker-1/maestro-agent died while the demo waited for case 1" in message
    assert "boom: cannot reach Kafka" in message
