"""``fleetplane controllers run``: its options reach the operator's settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from controllers import operator
from fleetplane.cli import app


@pytest.fixture(autouse=True)
def in_a_pod(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No kubeconfig anywhere, as in the controllers' pod: they log in with its service account."""
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")


def test_status_write_options_reach_the_status_controller(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[operator.OperatorSettings] = []
    monkeypatch.setattr(operator, "run", started.append)
    args = ["controllers", "run", "--maestro", "m:1", "--write-rate", "500", "--write-concurrency", "48"]
    args += ["--mirror-status-wait", "2.5", "--rollup-bytes", "65536", "--targets-in-flight", "99"]
    args += ["--insecure"]

    result = CliRunner().invoke(app, args)

    assert result.exit_code == 0, result.output
    (settings,) = started
    assert (settings.status.write_rate, settings.status.write_burst) == (500.0, 400)
    assert settings.status.write_concurrency == 48
    assert settings.maestro == "m:1"
    assert settings.propagation.mirror_status_seconds == 2.5
    assert settings.status.rollup_bytes_per_second == 65536
    assert settings.propagation.targets_in_flight == 99
    assert settings.maestro_credentials.plaintext


def test_the_controllers_maestro_identity_is_their_tls_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    started: list[operator.OperatorSettings] = []
    monkeypatch.setattr(operator, "run", started.append)
    for name in ("ca.crt", "tls.crt", "tls.key"):
        (tmp_path / name).write_text("x")

    result = CliRunner().invoke(app, ["controllers", "run", "--tls-dir", str(tmp_path)])

    assert result.exit_code == 0, result.output
    tls = started[0].maestro_credentials.tls
    assert tls is not None and (tls.ca, tls.cert, tls.key) == (
        tmp_path / "ca.crt",
        tmp_path / "tls.crt",
        tmp_path / "tls.key",
    )


def test_the_controllers_refuse_to_start_without_maestro_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLEETPLANE_TLS_DIR", raising=False)
    monkeypatch.setattr(operator, "run", lambda _: None)

    result = CliRunner().invoke(app, ["controllers", "run"])

    assert result.exit_code == 2
    assert "--tls-dir" in result.output and "--insecure" in result.output


def test_write_concurrency_below_one_is_refused_naming_the_option() -> None:
    result = CliRunner().invoke(app, ["controllers", "run", "--write-concurrency", "0"])

    assert result.exit_code == 2
    assert "--write-concurrency" in result.output


def test_the_argocd_redis_options_reach_the_tree_writer(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    started: list[operator.OperatorSettings] = []
    monkeypatch.setattr(operator, "run", started.append)
    for name in ("ca.crt", "tls.crt", "tls.key", "auth"):
        (tmp_path / name).write_text("x")
    args = ["controllers", "run", "--tls-dir", str(tmp_path), "--argocd-redis", "127.0.0.1:6379"]
    args += ["--argocd-redis-password-file", str(tmp_path / "auth"), "--mirror-max-resources", "100"]

    result = CliRunner().invoke(app, args)

    assert result.exit_code == 0, result.output
    trees = started[0].trees
    assert trees is not None and trees.address == "127.0.0.1:6379"
    assert trees.password_file == tmp_path / "auth" and trees.tls.cert == tmp_path / "tls.crt"
    assert trees.argocd_namespace == "argocd"
    assert started[0].status.max_resources == 100


def test_the_argocd_redis_without_its_password_file_is_refused_naming_the_option(tmp_path: Path) -> None:
    args = ["controllers", "run", "--insecure", "--argocd-redis", "127.0.0.1:6379"]

    result = CliRunner().invoke(app, args)

    assert result.exit_code == 2
    assert "--argocd-redis-password-file" in result.output
