"""Inventory labels: the keys only the platform sets, and the ones it sets (pure).

A cluster's labels in the hub inventory (its Argo CD cluster Secret) are what ApplicationSet
cluster generators select on, so a label a team could set freely is a label any team could use to
pull another team's (or the platform's) applications onto its cluster. Keys under
``fleetplane.io/`` — and any subdomain of it, ``*.fleetplane.io/`` — are the platform's: a claim
that sets one in ``spec.parameters.labels`` is refused, naming the key, and the platform sets
``fleetplane.io/team`` to the claim's namespace itself. Selectors that must be trusted (which
team's clusters get what) select on reserved keys; a team's own keys are for its own selectors.

Labels a Composition's defaults set are the platform's too, and are not checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DOMAIN = "fleetplane.io"
RESERVED_PREFIX = f"{DOMAIN}/"
#: the claim's namespace: the team that asked for the cluster
LABEL_TEAM = f"{DOMAIN}/team"
#: where a claim (and so a team) writes its cluster's inventory labels
CLAIM_FIELD = "spec.parameters.labels"
REASON = "ReservedLabel"


def is_reserved(key: str) -> bool:
    """Whether ``key``'s prefix is ``fleetplane.io`` or a subdomain of it."""
    prefix, slash, _ = key.partition("/")
    prefix = prefix.lower()
    return bool(slash) and (prefix == DOMAIN or prefix.endswith(f".{DOMAIN}"))


def reserved_keys(labels: Mapping[str, Any] | None) -> list[str]:
    """The reserved keys among ``labels``, sorted."""
    return sorted(k for k in (labels or {}) if is_reserved(str(k)))


def refusal(keys: list[str], field: str = CLAIM_FIELD) -> str:
    """What a claim setting reserved ``keys`` is told: the field, the keys, why, and the fix."""
    named = ", ".join(keys)
    verb = "is" if len(keys) == 1 else "are"
    return (
        f"{field}: {named} {verb} reserved: keys under {RESERVED_PREFIX} (and *.{DOMAIN}/) are set "
        f"by the platform only ({LABEL_TEAM} is the claim's namespace); remove "
        f'{"it" if len(keys) == 1 else "them"} from {field} or use a key of your own, e.g. demo: "true"'
    )


def claim_refusal(claim: Mapping[str, Any]) -> str | None:
    """Why the claim cannot be provisioned as it is, or None when its labels are its own."""
    parameters = (claim.get("spec") or {}).get("parameters") or {}
    labels = parameters.get("labels") if isinstance(parameters, Mapping) else None
    keys = reserved_keys(labels if isinstance(labels, Mapping) else None)
    return refusal(keys) if keys else None


def platform_labels(claim_namespace: str | None) -> dict[str, str]:
    """The labels the platform sets on a cluster: its team, when a claim asked for it."""
    return {LABEL_TEAM: claim_namespace} if claim_namespace else {}
