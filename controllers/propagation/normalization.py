"""A rendered Application's spec as Argo CD stores it: what Go's ``encoding/json`` leaves out
(``omitempty`` on empty strings and lists) and what Argo CD's ``NormalizeApplicationSpec`` clears
(source options and a sync policy that set nothing).

Called by ``templating.render_application``, so that the hub mirror and the worker Application
hold what Argo CD's ApplicationSet controller would have created from the same template. Empty
maps are kept: in Argo CD's types they are pointers (``automated: {}`` turns automated sync on).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: string fields without ``omitempty``: an empty value is stored as written
_KEPT_EMPTY_STRINGS = frozenset({"repoURL", "project"})
#: a source's option blocks that Argo CD clears when every field in them is empty
_SOURCE_OPTIONS = ("helm", "kustomize", "directory")
#: what makes a sync policy set something (Argo CD's ``SyncPolicy.IsZero``)
_SYNC_POLICY_FIELDS = ("syncOptions", "automated", "retry", "managedNamespaceMetadata")


def normalize_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = _without_empty(spec)
    if isinstance(out.get("source"), dict):
        out["source"] = _normalize_source(out["source"])
    if isinstance(out.get("sources"), list):
        out["sources"] = [_normalize_source(s) if isinstance(s, dict) else s for s in out["sources"]]
    policy = out.get("syncPolicy")
    if isinstance(policy, dict) and not any(f in policy for f in _SYNC_POLICY_FIELDS):
        out.pop("syncPolicy")
    return out


def _normalize_source(source: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in source.items() if not (k in _SOURCE_OPTIONS and _is_zero(v))}


def _without_empty(value: Any) -> Any:
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            cleaned = _without_empty(item)
            if cleaned == "" and key not in _KEPT_EMPTY_STRINGS:
                continue
            if cleaned == [] or cleaned is None:
                continue
            out[key] = cleaned
        return out
    if isinstance(value, list):
        return [_without_empty(v) for v in value]
    return value


def _is_zero(value: Any) -> bool:
    if isinstance(value, Mapping):
        return all(_is_zero(v) for v in value.values())
    if isinstance(value, list):
        return not value
    return value in ("", 0, None) or value is False
