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
class GeneratorInputs:
    """Everything generators may read, fetched by the caller.

    ``config_maps`` maps a ConfigMap name (in the ApplicationSet's namespace) to its ``data``.
    ``decision_resources`` maps ``(apiVersion, kind)`` exactly as a duck-type ConfigMap names them
    (e.g. ``("cluster.open-cluster-management.io/v1beta1", "placementdecisions")``) to every such
    resource in the namespace; the generator applies ``name``/``labelSelector`` itself.
    """

    inventory: inventory.Inventory
    config_maps: Mapping[str, Mapping[str, str]] = dataclasses.field(default_factory=dict)
    decision_resources: Mapping[tuple[str, str], Sequence[Mapping[str, Any]]] = dataclasses.field(
        default_factory=dict
    )


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
