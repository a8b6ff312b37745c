"""The files under examples/: what the docs point users to, loaded once for the tests that keep
them working (rendered, generated and applied)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CLAIMS = sorted((EXAMPLES / "claims").glob("*.yaml"))
APPLICATION_SETS = sorted((EXAMPLES / "applicationsets").glob("*.yaml"))


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def of_kind(path: Path, kind: str) -> list[dict[str, Any]]:
    return [doc for doc in documents(path) if doc.get("kind") == kind]
