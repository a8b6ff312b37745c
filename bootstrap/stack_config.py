"""Typed, validated reading of a stack's ``pulumi config`` (pure: no Pulumi runtime needed).

The local and aws programs read their settings through ``Reader``: each value is checked when it
is read, and a wrong one raises ``ConfigError`` naming the key, what was given, what is allowed and
the ``pulumi config set`` command that fixes it, so ``pulumi up`` stops before creating anything.
Pulumi's own typed project config (``Pulumi.yaml``) already refuses a non-integer for an integer
key; ranges, choices and patterns are checked here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

PROJECT = "fleetplane"

#: Reads one raw value of the project's namespace (``pulumi.Config().get``), None when unset.
Getter = Callable[[str], str | None]


class ConfigError(ValueError):
    def __init__(self, key: str, value: str, expected: str, example: str) -> None:
        self.key = f"{PROJECT}:{key}"
        super().__init__(
            f"config {self.key} = {value!r} is not valid: expected {expected}; "
            f"fix: pulumi config set {self.key} {example}"
        )


@dataclass(frozen=True)
class Reader:
    get: Getter

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        raw = self.get(key)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(key, raw, f"an integer from {low} to {high}", str(default)) from None
        if not low <= value <= high:
            raise ConfigError(key, raw, f"an integer from {low} to {high}", str(default))
        return value

    def port(self, key: str) -> int:
        """A loopback port; 0 (the default) picks a free one at creation and keeps it."""
        value = self.integer(key, 0, 0, 65535)
        if 0 < value < 1024:
            raise ConfigError(key, str(value), "0 (a free port) or a port from 1024 to 65535", "0")
        return value

    def choice(self, key: str, default: str, choices: Sequence[str]) -> str:
        raw = self.get(key)
        if raw is None or raw == "":
            return default
        if raw not in choices:
            raise ConfigError(key, raw, "one of " + ", ".join(choices), default)
        return raw

    def string(self, key: str, default: str, pattern: str, expected: str) -> str:
        raw = self.get(key)
        if raw is None or raw == "":
            return default
        if not re.fullmatch(pattern, raw):
            raise ConfigError(key, raw, expected, default)
        return raw

    def pinned(self, key: str, pinned: str) -> str:
        """A version that must be the one fleetplane pins and builds (``localinfra.versions``):
        the value documents it and a different one is refused rather than silently ignored."""
        raw = self.get(key)
        if raw is None or raw == "" or raw == pinned:
            return pinned
        raise ConfigError(key, raw, f"{pinned} (the version built into ~/.cache/fleetplane)", pinned)
