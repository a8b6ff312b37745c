"""The functions a provisioner (or ``fleetplane render``) can call, by name: the built-in template
function, the Python callables of the ``fleetplane.functions`` entry-point group of the installed
packages, and the function servers it was given (``--function NAME=ADDRESS``).

A name is served by one of them: a function server or an entry point may not take the built-in's
name, and a server may not take an entry point's, so a Composition's ``functionRef.name`` always
means what the platform's operator installed.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import metadata

from provisioner import functions
from provisioner.functions import template


class Installed:
    def __init__(self, found: Mapping[str, functions.Function]) -> None:
        self._found = dict(found)

    def get(self, name: str) -> functions.Function | None:
        return self._found.get(name)

    def names(self) -> list[str]:
        return sorted(self._found)


def builtin() -> dict[str, functions.Function]:
    return {functions.TEMPLATE: template.run}


def entry_points() -> dict[str, functions.Function]:
    """The callables of the ``fleetplane.functions`` group; one that cannot be loaded or is not
    callable is an error naming its package and the fix."""
    found: dict[str, functions.Function] = {}
    for point in metadata.entry_points(group=functions.ENTRY_POINT_GROUP):
        owner = point.dist.name if point.dist is not None else "an installed package"
        try:
            loaded = point.load()
        except Exception as exc:  # a package's own import error: name the package that declares it
            raise functions.FunctionError(
                f"function {point.name!r} ({point.value}, declared by {owner}) cannot be loaded: "
                f"{type(exc).__name__}: {exc} — fix or uninstall that package"
            ) from None
        if not callable(loaded):
            raise functions.FunctionError(
                f"function {point.name!r} ({point.value}, declared by {owner}) is a "
                f"{type(loaded).__name__}, not a callable taking a functions.Request"
            )
        found[point.name] = loaded
    return found


def installed(servers: Mapping[str, functions.Function] | None = None) -> Installed:
    """Everything installed: the built-in, the entry points and ``servers``."""
    found = builtin()
    for origin, extra in (("entry point", entry_points()), ("function server", dict(servers or {}))):
        for name, function in extra.items():
            if name in found:
                raise functions.FunctionError(
                    f"{origin} {name!r} takes the name of a function already installed — give it another name"
                )
            found[name] = function
    return Installed(found)
