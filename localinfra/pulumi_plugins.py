"""Pulumi's Python language host, fleetplane's own: it runs the Pulumi programs of ``bootstrap/``.

The Pulumi CLI (built from its Go module by ``localinfra.build.ensure_pulumi``) runs a Python
program through a *language host*, a plugin named ``pulumi-language-python``. Upstream's host is a
Go module of its own (``github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3``) that
the Go module proxy reachable here does not serve at any version, so fleetplane brings its own:
this module, run by the ``pulumi-language-python`` script installed next to the CLI. It speaks the
engine's ``pulumirpc.LanguageRuntime`` gRPC protocol with the stubs the Python SDK ships, and runs
each program as upstream's host does: the SDK's ``pulumi-language-python-exec`` launcher (from the
pinned SDK module) under the project's virtualenv, the stack's configuration in ``PULUMI_CONFIG``.

What it leaves out, compared with upstream's host: it does not install dependencies (``make``
does) nor report the resource plugins of installed Pulumi packages (the local stack uses dynamic
providers only); code generation RPCs (``pulumi convert``/``new``) are not served.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from concurrent import futures
from importlib import metadata
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format
from pulumi._version import _VERSION
from pulumi.runtime.proto import language_pb2, language_pb2_grpc, plugin_pb2

from localinfra import paths

EXEC_SCRIPT = "pulumi-language-python-exec"
#: The launcher's exit code once it has shown the user their error (upstream's contract): the
#: engine then stops without adding a message of its own.
BAIL = 32


def exec_script() -> Path:
    return paths.bin_dir() / EXEC_SCRIPT


def program_python(root: str, options: dict[str, Any]) -> str:
    """The interpreter that runs the program: the project's ``virtualenv`` runtime option
    (relative to the project root, as upstream reads it), else this host's own interpreter."""
    venv = options.get("virtualenv")
    if not venv:
        return sys.executable
    folder = Path(venv) if Path(venv).is_absolute() else Path(root) / venv
    python = folder / "bin" / "python"
    if not python.exists():
        raise FileNotFoundError(
            f"Pulumi.yaml's runtime option virtualenv is {venv!r}, but {python} does not exist: "
            "run `make build` in the repository (it creates .venv)"
        )
    return str(python)


def run_argv(request: Any, engine: str, python: str) -> list[str]:
    """The launcher's command line for a ``RunRequest`` (the flags upstream's host passes)."""
    info = request.info
    argv = [
        python,
        "-u",
        str(exec_script()),
        "--monitor",
        request.monitor_address,
        "--engine",
        engine,
        "--project",
        request.project,
        "--stack",
        request.stack,
        "--pwd",
        request.pwd,
        "--dry_run",
        "true" if request.dryRun else "false",
        "--parallel",
        str(request.parallel),
        "--organization",
        request.organization or "organization",
        "--root_directory",
        info.root_directory or request.pwd,
        os.path.join(info.program_directory or request.pwd, info.entry_point or "."),
        *request.args,
    ]
    return argv


def run_env(request: Any) -> dict[str, str]:
    env = dict(os.environ)
    env["PULUMI_CONFIG"] = json.dumps(dict(request.config))
    env["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(list(request.configSecretKeys))
    return env


class LanguageHost(language_pb2_grpc.LanguageRuntimeServicer):
    def __init__(self, engine: str) -> None:
        self.engine = engine

    def GetPluginInfo(self, request: Any, context: Any) -> Any:
        return plugin_pb2.PluginInfo(version=_VERSION)

    def GetRequiredPlugins(self, request: Any, context: Any) -> Any:
        return language_pb2.GetRequiredPluginsResponse()

    def GetRequiredPackages(self, request: Any, context: Any) -> Any:
        return language_pb2.GetRequiredPackagesResponse()

    def About(self, request: Any, context: Any) -> Any:
        python = self._python(request.info)
        version = subprocess.run(
            [python, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        return language_pb2.AboutResponse(executable=python, version=version)

    def GetProgramDependencies(self, request: Any, context: Any) -> Any:
        deps = [
            language_pb2.DependencyInfo(name=d.metadata["Name"], version=d.version)
            for d in metadata.distributions()
            if d.metadata["Name"]
        ]
        return language_pb2.GetProgramDependenciesResponse(dependencies=sorted(deps, key=lambda d: d.name))

    def Run(self, request: Any, context: Any) -> Any:
        try:
            python = self._python(request.info)
        except FileNotFoundError as exc:
            return language_pb2.RunResponse(error=str(exc))
        if not exec_script().exists():
            return language_pb2.RunResponse(
                error=f"{exec_script()} is missing: run `fleetplane local build` (it builds the Pulumi CLI)"
            )
        # The program's output goes to this host's stdout/stderr, which the engine shows.
        done = subprocess.run(run_argv(request, self.engine, python), env=run_env(request), check=False)
        if done.returncode == 0:
            return language_pb2.RunResponse()
        if done.returncode == BAIL:
            return language_pb2.RunResponse(bail=True)
        return language_pb2.RunResponse(error=f"the Python program exited with code {done.returncode}")

    def _python(self, info: Any) -> str:
        options = json_format.MessageToDict(info.options) if info.HasField("options") else {}
        return program_python(info.root_directory, options)


def main() -> None:
    """``pulumi-language-python [flags] ENGINE_ADDRESS``: serve on a free loopback port and print
    it, as the engine expects of a plugin; flags (logging, tracing) are accepted and ignored."""
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    if not args:
        sys.exit("usage: pulumi-language-python ENGINE_ADDRESS (the Pulumi CLI starts this plugin)")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    language_pb2_grpc.add_LanguageRuntimeServicer_to_server(LanguageHost(args[-1]), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop(0)


if __name__ == "__main__":
    main()
