"""What the repository says of itself: a README a newcomer reads in minutes, and no account of how
the project was developed (that is git's history and the maintainers' notes).

Cases: the README stays within 250 lines; no tracked text file names numbered development periods
or the documents the project started from.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HISTORY = re.compile(r"\bsessions? \d+|\bsource documents?\b|\bthe seed\b", re.IGNORECASE)
TEXT = (".py", ".md", ".j2", ".yaml", ".yml", ".toml", ".proto", ".sql", ".sh", ".txt")


def test_the_readme_is_short() -> None:
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines <= 250, f"README.md has {lines} lines: move details to docs/"


def test_no_file_tells_how_the_project_was_developed() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    found = []
    for name in tracked:
        path = ROOT / name
        if not name.endswith(TEXT) or path == Path(__file__).resolve() or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if HISTORY.search(line):
                found.append(f"{name}:{number}: {line.strip()[:100]}")
    assert not found, "development history in the tree:\n" + "\n".join(found[:20])
