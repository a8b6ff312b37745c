"""Revoked client certificates: what a revocation names, and how a serial is written.

The server refuses a revoked certificate on every call; storage keeps the list; the CLI and the
query service parse the serial an operator types.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from maestro.api import errors

_HEX = re.compile(r"^[0-9a-f]+$")


@dataclass(frozen=True, slots=True)
class Revocation:
    serial: int
    reason: str
    revoked_by: str
    revoked_at: datetime | None = None


def serial_text(serial: int) -> str:
    """How a serial is stored and shown: lower-case hex, no leading zeros."""
    return format(serial, "x")


def parse_serial(text: str) -> int:
    """A serial as operators copy it: decimal digits, or hex with a ``0x`` prefix or ``:``
    separators (``openssl x509 -serial`` prints bare hex: put ``0x`` in front)."""
    raw = text.strip().lower()
    try:
        if raw.startswith("0x"):
            value = int(raw[2:], 16)
        elif ":" in raw:
            value = int(raw.replace(":", ""), 16)
        elif raw.isdigit():
            value = int(raw)
        elif _HEX.match(raw):
            value = int(raw, 16)  # hex digits with a letter among them: not decimal
        else:
            value = -1
    except ValueError:
        value = -1
    if value <= 0:
        raise errors.InvalidArgument(
            "serial",
            f"{text!r} is not a certificate serial",
            "give it in decimal, or in hex with a 0x prefix (openssl x509 -noout -serial prints hex)",
        )
    return value
