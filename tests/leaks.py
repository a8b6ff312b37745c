"""Looking for credentials in what a run wrote to its logs.

Private keys, bearer tokens (Kubernetes service-account tokens are JWTs) and the passwords a run
generated must never reach a log: logs are shipped, kept and read by people who hold none of them.
The shared test environment scans every process log it holds before it is torn down.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

_PATTERNS = {
    "a PEM private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    # header.payload.signature, each base64url; a JWT header always starts with {" -> eyJ
    "a JWT bearer token": re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
}
_MIN_KNOWN = 8  # a shorter "secret" would match ordinary text by chance


def leaks(text: str, known: Iterable[str] = ()) -> list[str]:
    """What ``text`` leaks: each kind of credential found, and which known secrets appear in it."""
    found = [what for what, pattern in _PATTERNS.items() if pattern.search(text)]
    found += [
        f"the known secret {secret[:3]}…" for secret in known if len(secret) >= _MIN_KNOWN and secret in text
    ]
    return found


def scan_logs(root: Path, known: Iterable[str] = ()) -> dict[str, list[str]]:
    """``{log file: what it leaks}`` for every ``*.log`` below ``root`` that leaks anything."""
    secrets = list(known)
    out: dict[str, list[str]] = {}
    for log in sorted(root.rglob("*.log")) if root.exists() else []:
        try:
            text = log.read_text(errors="replace")
        except OSError:
            continue
        found = leaks(text, secrets)
        if found:
            out[str(log.relative_to(root))] = found
    return out
