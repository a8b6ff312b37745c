"""Where the runtime keeps what it builds (the cache) and what it runs (environment state)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """Root of everything built or downloaded once: ``$FLEETPLANE_CACHE`` or ``~/.cache/fleetplane``."""
    env = os.environ.get("FLEETPLANE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "fleetplane"


def bin_dir() -> Path:
    return cache_root() / "bin"


def build_dir(name: str) -> Path:
    return cache_root() / "build" / name


def envs_dir() -> Path:
    """Running environments (process ids, logs, data) live here, one folder each."""
    return cache_root() / "envs"
