"""What a `maestro.client.MaestroClient` call raises when the server refuses or cannot serve it.

Callers (the hub controllers, the provisioner, the CLI) branch on these kinds and never on gRPC's
types, so they do not depend on the wire. Each error keeps the server's status name (``code``, a
gRPC code name such as ``NOT_FOUND``) and its message (``details``), which already names the field
at fault and the fix where the server knows them.
"""

from __future__ import annotations

from typing import ClassVar


class MaestroCallError(Exception):
    """A call to a Maestro server failed."""

    #: whether the same call may succeed later without anything being changed
    retryable: ClassVar[bool] = False

    def __init__(self, code: str, details: str) -> None:
        self.code = code
        self.details = details
        super().__init__(f"{code}: {details}")


class Unavailable(MaestroCallError):
    """The server is away, restarting, overloaded or did not answer in time: try again."""

    retryable = True


class NotFound(MaestroCallError):
    """The consumer, bundle or certificate named does not exist."""


class AlreadyExists(MaestroCallError):
    """An object of that name exists already and differs from the one asked for."""


class InvalidRequest(MaestroCallError):
    """The request is malformed (or names a watch token the server does not know)."""


class LimitExceeded(MaestroCallError):
    """The request is larger than the server accepts, or a bounded resource of it is used up."""


class Conflict(MaestroCallError):
    """The request contradicts what the server stores (a stale version, a bundle being deleted)."""


class Unauthenticated(MaestroCallError):
    """The server could not tell who is calling: the certificate or token is missing, expired or revoked."""


class PermissionDenied(MaestroCallError):
    """The caller is known but not allowed to do this."""


class Unsupported(MaestroCallError):
    """The server does not offer this call."""


#: the kind of each gRPC status code name; a code not named here is an `Unavailable`
KINDS: dict[str, type[MaestroCallError]] = {
    "NOT_FOUND": NotFound,
    "ALREADY_EXISTS": AlreadyExists,
    "INVALID_ARGUMENT": InvalidRequest,
    "OUT_OF_RANGE": InvalidRequest,
    "RESOURCE_EXHAUSTED": LimitExceeded,
    "FAILED_PRECONDITION": Conflict,
    "UNAUTHENTICATED": Unauthenticated,
    "PERMISSION_DENIED": PermissionDenied,
    "UNIMPLEMENTED": Unsupported,
}


def from_code(code: str, details: str) -> MaestroCallError:
    """The error of a call that ended with status ``code`` (its name) and message ``details``."""
    return KINDS.get(code, Unavailable)(code, details)
