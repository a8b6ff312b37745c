"""The controllers' domain modules stay pure: no I/O libraries imported, and each says who calls it.

Cases: every module under controllers/ (imports checked from the source, so nothing runs); each
has a module docstring.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

import controllers

ROOT = pathlib.Path(controllers.__file__).parent
MODULES = sorted(ROOT.rglob("*.py"))
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
}


def imported_roots(path: pathlib.Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(ROOT)) for p in MODULES])
def test_no_io_imports(path: pathlib.Path) -> None:
    assert imported_roots(path) & FORBIDDEN == set()


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(ROOT)) for p in MODULES])
def test_module_docstring(path: pathlib.Path) -> None:
    assert ast.get_docstring(ast.parse(path.read_text())), f"{path} needs a docstring saying who calls it"
