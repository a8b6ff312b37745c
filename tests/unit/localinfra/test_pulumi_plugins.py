"""fleetplane's Pulumi language host: the program's command line, interpreter and config.

Cases: the launcher gets the flags upstream's host passes (monitor, engine, project, stack,
dry run, parallelism, root directory) and the program's path; the stack's config and secret keys
go in ``PULUMI_CONFIG``/``PULUMI_CONFIG_SECRET_KEYS``; Pulumi.yaml's ``virtualenv`` option picks
the interpreter (relative to the project root), and a missing one is an error saying what to run;
the CLI's version is the SDK's that pyproject pins.
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

import pytest
from pulumi.runtime.proto import language_pb2

from localinfra import paths, pulumi_plugins, versions


def request() -> language_pb2.RunRequest:
    info = language_pb2.ProgramInfo(root_directory="/proj", program_directory="/proj", entry_point=".")
    return language_pb2.RunRequest(
        project="fleetplane",
        stack="local",
        pwd="/proj",
        monitor_address="127.0.0.1:1",
        dryRun=True,
        parallel=8,
        config={"fleetplane:demoClusters": "2", "fleetplane:secret": "s"},
        configSecretKeys=["fleetplane:secret"],
        info=info,
    )


def test_run_argv_passes_upstreams_flags() -> None:
    argv = pulumi_plugins.run_argv(request(), "127.0.0.1:2", "/venv/bin/python")
    assert argv[:3] == ["/venv/bin/python", "-u", str(paths.bin_dir() / "pulumi-language-python-exec")]
    flags = dict(zip(argv[3:-1:2], argv[4:-1:2], strict=True))
    assert flags == {
        "--monitor": "127.0.0.1:1",
        "--engine": "127.0.0.1:2",
        "--project": "fleetplane",
        "--stack": "local",
        "--pwd": "/proj",
        "--dry_run": "true",
        "--parallel": "8",
        "--organization": "organization",
        "--root_directory": "/proj",
    }
    assert argv[-1] == "/proj/."


def test_config_goes_to_the_program_environment() -> None:
    env = pulumi_plugins.run_env(request())
    assert json.loads(env["PULUMI_CONFIG"]) == {"fleetplane:demoClusters": "2", "fleetplane:secret": "s"}
    assert json.loads(env["PULUMI_CONFIG_SECRET_KEYS"]) == ["fleetplane:secret"]


def test_the_virtualenv_option_picks_the_interpreter(tmp_path: Path) -> None:
    assert pulumi_plugins.program_python(str(tmp_path), {}) == sys.executable
    (tmp_path / "venv" / "bin").mkdir(parents=True)
    (tmp_path / "venv" / "bin" / "python").touch()
    assert pulumi_plugins.program_python(str(tmp_path), {"virtualenv": "venv"}) == str(
        tmp_path / "venv/bin/python"
    )
    with pytest.raises(FileNotFoundError, match="run `make build`"):
        pulumi_plugins.program_python(str(tmp_path), {"virtualenv": "missing"})


def test_the_cli_is_built_at_the_sdk_version() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[3] / "pyproject.toml").read_text())
    assert f"pulumi=={versions.PULUMI}" in pyproject["project"]["optional-dependencies"]["bootstrap"]
