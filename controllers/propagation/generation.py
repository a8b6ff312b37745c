"""What generators take and give: their inputs (read by the caller beforehand), the parameter sets
they produce, and the checks of string-only parameters every generator family shares.

Used by ``generators`` and the generator families (``leaf_generators``, ``combining_generators``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from controllers.propagation import errors, inventory, templating

GeneratorError = errors.GeneratorError

Params = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class GitTree:
    """One revision of a repository, as the git generator reads it (filled by the caller)."""

    #: the commit the revision resolved to
    commit: str
    #: every directory of the checkout but its root and hidden ones, in walk order
    directories: tuple[str, ...] = ()
    #: a file pattern (as ``git ls-files`` takes it) -> the matching files' paths and texts
    files: Mapping[str, tuple[tuple[str, str], ...]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class GeneratorInputs:
    """Everything generators may read, fetched by the caller.

    ``config_maps`` maps a ConfigMap name (in the ApplicationSet's namespace) to its ``data``.
    ``decision_resources`` maps ``(apiVersion, kind)`` exactly as a duck-type ConfigMap names them
    (e.g. ``("cluster.open-cluster-management.io/v1beta1", "placementdecisions")``) to every such
    resource in the namespace; the generator applies ``name``/``labelSelector`` itself.
    ``git`` maps ``(repoURL, revision)`` to that revision's tree, or to why it could not be read.
    """

    inventory: inventory.Inventory
    config_maps: Mapping[str, Mapping[str, str]] = dataclasses.field(default_factory=dict)
    decision_resources: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]] = dataclasses.field(
        default_factory=dict
    )
    git: Mapping[tuple[str, str], GitTree | str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Unmatched:
    """A cluster decision that produced no parameters: why, and which generator saw it."""

    cluster: str
    reason: str
    path: str


@dataclasses.dataclass
class Generation:
    params: list[Params] = dataclasses.field(default_factory=list)
    unmatched: list[Unmatched] = dataclasses.field(default_factory=list)


class GenerateOne(Protocol):
    """``generators.generate_one``, which the combining generators run on their children."""

    def __call__(
        self,
        generator: Mapping[str, Any],
        inputs: GeneratorInputs,
        mode: templating.Mode,
        *,
        path: str,
        interpolate: Mapping[str, Any] | None = None,
    ) -> Generation: ...


def string(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    raise GeneratorError(
        where,
        f"is {type(value).__name__} {value!r}, but without goTemplate parameters must be strings; "
        "quote the value, or set goTemplate: true",
    )


def string_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise GeneratorError(where, "must be a map of strings")
    return {str(k): string(v, f"{where}.{k}") for k, v in value.items()}


def go_json(value: Any) -> Any:
    """A copy of a JSON or YAML value as Go decodes it into ``map[string]any``: every number a
    float64 (so ``{{ .n }}`` prints 1000000 as ``1e+06``, as Argo CD does), keys strings."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): go_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [go_json(v) for v in value]
    return str(value)
