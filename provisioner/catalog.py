"""The compositions folder: definitions, Compositions and their template files, read from disk.

``fleetplane render`` reads everything from here, and the operator reads the template files that
Compositions name by ``spec.template.path``. A path may not leave the folder, so a Composition on
the cluster cannot make the provisioner read arbitrary files.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from provisioner import api

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: compositions/ beside the provisioner package (the repository's, or the installed tree's)
COMPOSITIONS_DIR = Path(__file__).resolve().parent.parent / "compositions"


class CatalogError(Exception):
    """A file that cannot be read or is not what it should be; the message names it and the fix."""


def load_documents(path: Path) -> list[dict[str, Any]]:
    """The YAML documents of a file (empty ones skipped); each must be a mapping."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise CatalogError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        docs = [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path} is not valid YAML: {exc}") from None
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict):
            raise CatalogError(f"{path}: document {i} is a {type(doc).__name__}, not a Kubernetes object")
    return docs


def load_kind(root: Path, kind: str) -> list[dict[str, Any]]:
    """Every object of ``kind`` (and the platform's group) in the YAML files under ``root``, by path."""
    found: list[dict[str, Any]] = []
    for path in sorted(root.rglob("*.yaml")):
        found.extend(
            d
            for d in load_documents(path)
            if d.get("kind") == kind and d.get("apiVersion") == api.API_VERSION
        )
    return found


def template_text(composition: Mapping[str, Any], root: Path = COMPOSITIONS_DIR) -> str:
    """The Composition's template: ``spec.template.inline``, or the file ``spec.template.path`` names
    under ``root``."""
    name = (composition.get("metadata") or {}).get("name", "")
    template = (composition.get("spec") or {}).get("template") or {}
    if template.get("inline"):
        return str(template["inline"])
    relative = template.get("path")
    if not relative:
        raise CatalogError(
            f"Composition {name!r}: spec.template has neither path nor inline — set one of them "
            "(path: a file under compositions/, e.g. worker-cluster/template.yaml.j2)"
        )
    base = root.resolve()
    path = (base / str(relative)).resolve()
    if not path.is_relative_to(base):
        raise CatalogError(
            f"Composition {name!r}: spec.template.path {relative!r} leaves {base} — name a file inside it"
        )
    try:
        return path.read_text()
    except OSError as exc:
        raise CatalogError(
            f"Composition {name!r}: spec.template.path {relative!r}: cannot read {path}: "
            f"{exc.strerror or exc}"
        ) from None
