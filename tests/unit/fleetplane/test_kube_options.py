"""``--kubeconfig`` and ``--context`` as the commands take them.

Cases: ``KUBECONFIG=a:b`` reaches an operator (``controllers run``) as one file holding the merged
current context; ``--context`` picks another context, for the operators and for a command that
calls the API server itself (``trace``); the user's own file is handed on as it is when it already
is the chosen context; with no kubeconfig anywhere (and not in a pod) a command exits 2 saying to
pass --kubeconfig or set KUBECONFIG.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from controllers import operator
from fleetplane import inspect_cli
from fleetplane.cli import app
from kubeio.kubeconfig import Kubeconfig
from provisioner import trace

from ..kubeio.test_kubeconfig import write


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Path, Path]:
    """KUBECONFIG=a:b, no home kubeconfig, not a pod."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    a = write(tmp_path / "a", ("hub", "http://hub-a:6443"), current="hub")
    b = write(tmp_path / "b", ("hub", "http://hub-b:6443"), ("other", "http://other:6443"), current="other")
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join((str(a), str(b))))
    return a, b


def operator_kubeconfig(monkeypatch: pytest.MonkeyPatch, *args: str) -> dict[str, Any]:
    started: list[operator.OperatorSettings] = []
    monkeypatch.setattr(operator, "run", started.append)
    result = CliRunner().invoke(app, ["controllers", "run", "--insecure", *args])
    assert result.exit_code == 0, result.output
    assert started[0].kubeconfig is not None
    loaded: dict[str, Any] = yaml.safe_load(Path(started[0].kubeconfig).read_text())
    return loaded


def server_of(config: dict[str, Any]) -> str:
    (context,) = [c for c in config["contexts"] if c["name"] == config["current-context"]]
    (cluster,) = [c for c in config["clusters"] if c["name"] == context["context"]["cluster"]]
    return str(cluster["cluster"]["server"])


def test_two_files_in_kubeconfig_reach_an_operator_merged(
    env: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = operator_kubeconfig(monkeypatch)
    assert config["current-context"] == "hub" and server_of(config) == "http://hub-a:6443"


def test_context_picks_a_context_of_the_merged_files(
    env: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = operator_kubeconfig(monkeypatch, "--context", "other")
    assert config["current-context"] == "other" and server_of(config) == "http://other:6443"


def test_one_file_on_its_current_context_is_handed_on_as_it_is(
    env: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, _ = env
    started: list[operator.OperatorSettings] = []
    monkeypatch.setattr(operator, "run", started.append)
    result = CliRunner().invoke(app, ["controllers", "run", "--insecure", "--kubeconfig", str(a)])
    assert result.exit_code == 0, result.output
    assert started[0].kubeconfig == str(a)


def test_trace_talks_to_the_chosen_contexts_server(
    env: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    servers: list[str] = []

    async def fake_trace(kind: str, name: str, namespace: str, config: Kubeconfig, *_: Any) -> trace.Node:
        servers.append(config.credentials().server)
        return trace.Node(f"{kind} {namespace}/{name}")

    monkeypatch.setattr(inspect_cli, "_trace", fake_trace)
    for args, server in (([], "http://hub-a:6443"), (["--context", "other"], "http://other:6443")):
        result = CliRunner().invoke(app, ["trace", "clusterclaim/c", *args])
        assert result.exit_code == 0, result.output
        assert servers.pop() == server


def test_no_kubeconfig_anywhere_says_what_to_pass(
    env: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBECONFIG")
    result = CliRunner().invoke(app, ["trace", "clusterclaim/c"])
    assert result.exit_code == 2
    assert "no kubeconfig found" in result.output
    assert "pass --kubeconfig FILE or set KUBECONFIG" in " ".join(result.output.split())


def test_an_unknown_context_lists_the_known_ones(env: tuple[Path, Path], tmp_path: Path) -> None:
    claim = tmp_path / "claim.yaml"
    claim.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    result = CliRunner().invoke(app, ["diff", str(claim), "--context", "nope"])
    assert result.exit_code == 2
    assert "pass --context with one of: hub, other" in " ".join(result.output.split())
