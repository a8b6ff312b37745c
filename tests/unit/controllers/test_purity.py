"""The controllers' domain modules stay pure: no I/O libraries imported, and each says who calls it.

Cases: every module under controllers/ except the I/O side (imports checked from the source, so
nothing runs), which also never imports the I/O side; each module has a docstring.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

import controllers

ROOT = pathlib.Path(controllers.__file__).parent
MODULES = sorted(ROOT.rglob("*.py"))
#: the kopf handlers and the controllers behind them, the hub and Argo CD cache adapters, the watch
#: of the mirrors, the operator wiring and the controllers' periodic runner: the only modules that
#: do I/O or schedule it
IO_MODULES = {
    "hub.py",
    "argocd_cache.py",
    "operator.py",
    "periodic.py",
    "propagation/handlers.py",
    "propagation/controller.py",
    "propagation/git_reader.py",
    "propagation/convergence.py",
    "propagation/works_and_mirrors.py",
    "propagation/mirror_cache.py",
    "propagation/stored_works.py",
    "propagation/sweep.py",
    "propagation/concurrency.py",
    "propagation/outcome.py",
    "propagation/settings.py",
    "status/controller.py",
}
PURE_MODULES = [p for p in MODULES if str(p.relative_to(ROOT)) not in IO_MODULES]
IO_IMPORTS = {"controllers." + m.removesuffix(".py").replace("/", ".") for m in IO_MODULES}
#: anything that talks to the network, the disk or other processes belongs in the kopf handlers
FORBIDDEN = {
    "kubernetes",
    "kopf",
    "grpc",
    "psycopg",
    "confluent_kafka",
    "boto3",
    "socket",
    "subprocess",
    "requests",
    "httpx",
    "asyncio",
    "os",
    "maestro",
    "localinfra",
    "redis",
}


def imported(path: pathlib.Path) -> set[str]:
    """Every module name imported, with ``from a import b`` counted as ``a`` and ``a.b``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_io_modules_exist() -> None:
    assert {str(p.relative_to(ROOT)) for p in MODULES} >= IO_MODULES


@pytest.mark.parametrize("path", PURE_MODULES, ids=[str(p.relative_to(ROOT)) for p in PURE_MODULES])
def test_no_io_imports(path: pathlib.Path) -> None:
    names = imported(path)
    assert {n.split(".")[0] for n in names} & FORBIDDEN == set()
    assert names & IO_IMPORTS == set()


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(ROOT)) for p in MODULES])
def test_module_docstring(path: pathlib.Path) -> None:
    assert ast.get_docstring(ast.parse(path.read_text())), f"{path} needs a docstring saying who calls it"
