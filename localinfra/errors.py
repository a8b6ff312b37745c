"""The one error type of the local runtime: what went wrong and what to do about it."""

from __future__ import annotations


class InfraError(RuntimeError):
    """A component could not be built, started or reached.

    ``fix`` tells the person at the keyboard what to do; ``log_tail`` carries the last lines of the
    component's own log when it crashed, so a failure is a message and not a hang.
    """

    def __init__(self, what: str, fix: str = "", log_tail: str = "") -> None:
        self.what = what
        self.fix = fix
        self.log_tail = log_tail
        parts = [what]
        if fix:
            parts.append(f"fix: {fix}")
        if log_tail:
            parts.append("last log lines:\n" + log_tail)
        super().__init__("\n".join(parts))
