"""Which gRPC status code each `maestro.api.errors` kind becomes.

Used by the gRPC services to abort a call with a code and a message a client can act on.
"""

from __future__ import annotations

import grpc

from maestro.api import errors

_CODES: tuple[tuple[type[errors.MaestroError], grpc.StatusCode], ...] = (
    # Order matters: TooLarge is an InvalidArgument.
    (errors.TooLarge, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.Exhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.Conflict, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
)


def code_for(error: errors.MaestroError) -> grpc.StatusCode:
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code
    return grpc.StatusCode.UNKNOWN
