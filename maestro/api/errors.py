"""The errors Maestro's layers raise; the gRPC server maps each kind to a status code.

Raised by validation, the lifecycle rules, the codecs (`maestro.wire`) and storage; every message
says what was wrong and, where the caller can act, how to fix it.
"""

from __future__ import annotations


class MaestroError(Exception):
    """Base of every error a client can be told about."""


class InvalidArgument(MaestroError):
    """A request or event is malformed; `field` is the path of the offending part."""

    def __init__(self, field: str, message: str, fix: str = "") -> None:
        self.field = field
        self.message = message
        self.fix = fix
        text = f"{field}: {message}"
        super().__init__(f"{text} ({fix})" if fix else text)


class TooLarge(InvalidArgument):
    """A payload exceeds the configured size limit."""

    def __init__(
        self,
        field: str,
        size: int,
        limit: int,
        fix: str = "split the manifests over several bundles or raise the server's bundle size limit",
    ) -> None:
        self.size = size
        self.limit = limit
        super().__init__(field, f"is {size} bytes, over the limit of {limit} bytes", fix)


class NotFound(MaestroError):
    """The named object does not exist."""

    def __init__(self, kind: str, key: str) -> None:
        self.kind = kind
        self.key = key
        super().__init__(f"{kind} {key!r} not found")


class AlreadyExists(MaestroError):
    """An object with this key exists already and differs from the one asked for."""

    def __init__(self, kind: str, key: str, detail: str = "") -> None:
        self.kind = kind
        self.key = key
        super().__init__(f"{kind} {key!r} already exists" + (f": {detail}" if detail else ""))


class Exhausted(MaestroError):
    """A bounded resource of the server (open streams, a stream's backlog) is used up."""

    def __init__(self, message: str, fix: str) -> None:
        self.message = message
        self.fix = fix
        super().__init__(f"{message} ({fix})")


class Conflict(MaestroError):
    """The request is well formed but contradicts the stored state (stale version, deleting, ...)."""

    def __init__(self, message: str, fix: str = "") -> None:
        self.message = message
        self.fix = fix
        super().__init__(f"{message} ({fix})" if fix else message)


class Unavailable(MaestroError):
    """Something the request needs (Kafka, for a consumer's topics) failed or is away; try again."""

    def __init__(self, message: str, fix: str = "") -> None:
        self.message = message
        self.fix = fix
        super().__init__(f"{message} ({fix})" if fix else message)
