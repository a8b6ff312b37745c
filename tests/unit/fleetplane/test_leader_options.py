"""The operators' leader-election options: on by default, Kubernetes' own flag names, a Lease per
operator in the pod's (or the kubeconfig context's) namespace, and a bad value refused at once
naming its flag and the fix."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from controllers import operator as controllers
from fleetplane.cli import app
from kubeio import kubeconfig
from provisioner import operator as provisioner

CONTROLLERS = ["controllers", "run", "--insecure"]
PROVISIONER = ["provisioner", "run", "--insecure", "--kafka", "k:9093", "--aws-region", "eu-west-1"]


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Any]:
    """In a pod of namespace ``fleetplane-system`` (no kubeconfig anywhere); the settings each
    operator would run with, instead of running it."""
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("POD_NAME", "hub-controllers-5c6d7-x2x4z")
    namespace_file = tmp_path / "namespace"
    namespace_file.write_text("fleetplane-system\n")
    monkeypatch.setattr(kubeconfig, "POD_NAMESPACE_FILE", namespace_file)
    runs: list[Any] = []
    monkeypatch.setattr(controllers, "run", runs.append)
    monkeypatch.setattr(provisioner, "run", runs.append)
    return runs


@pytest.mark.parametrize(
    ("args", "lease"), [(CONTROLLERS, "fleetplane-controllers"), (PROVISIONER, "fleetplane-provisioner")]
)
def test_election_is_on_by_default_with_a_lease_per_operator_in_the_pods_namespace(
    started: list[Any], args: list[str], lease: str
) -> None:
    result = CliRunner().invoke(app, args)

    assert result.exit_code == 0, result.output
    (settings,) = started
    election = settings.election
    assert election is not None and election.kubeconfig is None  # the pod's service account
    chosen = election.lease
    assert (chosen.name, chosen.namespace) == (lease, "fleetplane-system")
    assert (chosen.lease_duration, chosen.renew_deadline, chosen.retry_period) == (15, 10.0, 2.0)
    assert chosen.identity.startswith("hub-controllers-5c6d7-x2x4z_")


def test_every_setting_has_a_flag(started: list[Any]) -> None:
    flags = ["--leader-elect-resource-name", "hub-a", "--leader-elect-resource-namespace", "ops"]
    flags += ["--leader-elect-lease-duration", "30", "--leader-elect-renew-deadline", "20"]
    flags += ["--leader-elect-retry-period", "4"]

    result = CliRunner().invoke(app, [*CONTROLLERS, *flags])

    assert result.exit_code == 0, result.output
    chosen = started[0].election.lease
    assert (chosen.name, chosen.namespace) == ("hub-a", "ops")
    assert (chosen.lease_duration, chosen.renew_deadline, chosen.retry_period) == (30, 20.0, 4.0)


@pytest.mark.parametrize("args", [CONTROLLERS, PROVISIONER], ids=["controllers", "provisioner"])
def test_no_leader_elect_runs_as_the_only_replica(started: list[Any], args: list[str]) -> None:
    result = CliRunner().invoke(app, [*args, "--no-leader-elect"])

    assert result.exit_code == 0, result.output
    assert started[0].election is None


def test_the_lease_goes_to_the_kubeconfig_contexts_namespace(started: list[Any], tmp_path: Path) -> None:
    config = tmp_path / "hub.kubeconfig"
    config.write_text(
        yaml.safe_dump(
            {
                "clusters": [{"name": "hub", "cluster": {"server": "https://127.0.0.1:6443"}}],
                "users": [{"name": "hub", "user": {"token": "t"}}],
                "contexts": [
                    {"name": "hub", "context": {"cluster": "hub", "user": "hub", "namespace": "ops"}}
                ],
                "current-context": "hub",
            }
        )
    )

    result = CliRunner().invoke(app, [*PROVISIONER, "--kubeconfig", str(config)])

    assert result.exit_code == 0, result.output
    election = started[0].election
    assert election.lease.namespace == "ops" and election.kubeconfig == str(config)


@pytest.mark.parametrize(
    ("flags", "named", "fix"),
    [
        (["--leader-elect-renew-deadline", "15"], "--leader-elect-renew-deadline", "lower it or raise"),
        (["--leader-elect-lease-duration", "5"], "--leader-elect-renew-deadline", "shorter than the lease"),
        (["--leader-elect-retry-period", "9"], "--leader-elect-renew-deadline", "lower the retry period"),
        (["--leader-elect-retry-period", "0"], "--leader-elect-retry-period", "more than 0 seconds"),
        (["--leader-elect-resource-name", "Hub_A"], "--leader-elect-resource-name", "lower-case letters"),
        (["--liveness", "0.0.0.0:8080"], "--liveness", "http://0.0.0.0:8080/healthz"),
    ],
)
def test_a_setting_that_cannot_work_is_refused_naming_its_flag(
    started: list[Any], flags: list[str], named: str, fix: str
) -> None:
    result = CliRunner().invoke(app, [*CONTROLLERS, *flags])

    assert result.exit_code == 2, result.output
    said = " ".join(re.sub("[│╭╮╰╯─]", " ", result.output).split())  # rich's box, unwrapped
    assert f"Invalid value for '{named}'" in said
    assert fix in said
    assert started == []
