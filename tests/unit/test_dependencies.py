"""Every third-party package the platform imports is declared in pyproject.toml, and nothing declared
goes unused: an undeclared import works only while another package happens to pull it in.

Cases: the top-level imports of the shipped packages map (through the installed distributions) to
[project.dependencies] or a role's extra (server, agent, hub, bootstrap, local, bench); every declared
dependency is imported somewhere.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions, requires
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPEC = re.compile(r"(?P<name>[A-Za-z0-9._-]+)(?:\[(?P<extras>[^\]]*)\])?")
EXTRA = re.compile(r"extra\s*==\s*[\"'](?P<extra>[^\"']+)")
PACKAGES = (
    "trust",
    "kubeio",
    "maestro",
    "localinfra",
    "fleetplane",
    "controllers",
    "provisioner",
    "bootstrap",
    "benchmarks",
)


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _specs(*, dev: bool) -> list[str]:
    """The base dependencies and each role's extra; with ``dev``, the development extra too (the
    checks' tools, and grpcio-tools, which the stub generator `maestro/wire/generate.py` runs)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [specs for extra, specs in project["optional-dependencies"].items() if dev or extra != "dev"]
    specs = [*project["dependencies"], *(spec for specs in extras for spec in specs)]
    return [spec for spec in specs if not spec.startswith(project["name"])]


def _declared(*, dev: bool = False) -> dict[str, set[str]]:
    """Each declared distribution -> the distributions its declared extras pull in (psycopg[pool])."""
    declared: dict[str, set[str]] = {}
    for spec in _specs(dev=dev):
        name, extras = _name_and_extras(spec)
        declared[_normal(name)] = {
            _normal(_name_and_extras(requirement)[0])
            for requirement in requires(name) or []
            if (extra := EXTRA.search(requirement)) and extra["extra"] in extras
        }
    return declared


def _name_and_extras(spec: str) -> tuple[str, set[str]]:
    match = SPEC.match(spec)
    assert match, spec
    return match["name"], set((match["extras"] or "").split(",")) - {""}


def _imported_modules() -> dict[str, str]:
    """Top-level third-party module -> one file importing it."""
    found: dict[str, str] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in PACKAGES:
                        found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def _distributions(module: str) -> set[str]:
    return {_normal(dist) for dist in packages_distributions().get(module, [])}


def test_every_imported_package_is_declared() -> None:
    declared = {dist for name, pulled in _declared(dev=True).items() for dist in (name, *pulled)}
    undeclared = [
        f"{module} (imported by {where}, installed as {sorted(_distributions(module)) or '?'})"
        for module, where in sorted(_imported_modules().items())
        if not _distributions(module) & declared
    ]
    assert not undeclared, "imported but not declared:\n" + "\n".join(undeclared)


def test_every_declared_package_is_imported() -> None:
    imported = set().union(*(_distributions(module) for module in _imported_modules()))
    unused = sorted(set(_declared()) - imported)
    assert not unused, f"declared but imported nowhere: {unused}"
