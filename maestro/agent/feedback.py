"""Status feedback: the values a bundle's feedback rules read from a live object (pure).

Called by `bundle_status.build_status` for every manifest whose manifestConfig has `feedbackRules`.
Follows OCM's work agent: a `JSONPaths` rule evaluates each path (see `jsonpath` for the subset);
one scalar result becomes a `String`/`Integer`/`Boolean` field value, anything else (an object, a
list, several results, a float) a compact `JsonRaw` JSON string of at most 1024 bytes; a path
that selects nothing is omitted, not an error. A `WellKnownStatus` rule reads a fixed set of paths
per kind: OCM's for Deployments, Jobs and Pods, and — our addition, so the hub sees what the
worker's Argo CD did with an Application the agent applied — for Argo CD Applications:

| kind (group)                  | name              | path                                             |
| ----------------------------- | ----------------- | ------------------------------------------------ |
| Deployment (apps)             | ReadyReplicas     | .status.readyReplicas                            |
|                               | Replicas          | .status.replicas                                 |
|                               | AvailableReplicas | .status.availableReplicas                        |
| Job (batch)                   | JobComplete       | .status.conditions[?(@.type=="Complete")].status |
|                               | JobSucceeded      | .status.succeeded                                |
| Pod (core)                    | PodReady          | .status.conditions[?(@.type=="Ready")].status    |
|                               | PodPhase          | .status.phase                                    |
| Application (argoproj.io)     | SyncStatus        | .status.sync.status                              |
|                               | HealthStatus      | .status.health.status                            |
|                               | Revision          | .status.sync.revision                            |
|                               | OperationPhase    | .status.operationState.phase                     |

A Secret's values never leave the cluster: rules are evaluated on the Secret without its `data`
and `stringData` (and without the `kubectl.kubernetes.io/last-applied-configuration` annotation,
which holds them in clear), so no path, not even `.`, reads them; a path that would have read one
is reported as an error instead of a value.

`problem` says why a live object is unhealthy, for the bundle's `Degraded` condition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from maestro.agent import jsonpath
from maestro.agent.errors import JsonPathError
from maestro.agent.manifests import JSON_PATHS, WELL_KNOWN_STATUS, FeedbackRule, JsonPath, split_api_version

JsonObject = dict[str, Any]

MAX_JSON_RAW = 1024  # OCM's limit: a feedback value is a summary, not a copy of the object

WELL_KNOWN: dict[tuple[str, str], tuple[JsonPath, ...]] = {
    ("apps", "Deployment"): (
        JsonPath("ReadyReplicas", ".status.readyReplicas"),
        JsonPath("Replicas", ".status.replicas"),
        JsonPath("AvailableReplicas", ".status.availableReplicas"),
    ),
    ("batch", "Job"): (
        JsonPath("JobComplete", '.status.conditions[?(@.type=="Complete")].status'),
        JsonPath("JobSucceeded", ".status.succeeded"),
    ),
    ("", "Pod"): (
        JsonPath("PodReady", '.status.conditions[?(@.type=="Ready")].status'),
        JsonPath("PodPhase", ".status.phase"),
    ),
    ("argoproj.io", "Application"): (
        JsonPath("SyncStatus", ".status.sync.status"),
        JsonPath("HealthStatus", ".status.health.status"),
        JsonPath("Revision", ".status.sync.revision"),
        JsonPath("OperationPhase", ".status.operationState.phase"),
    ),
}


#: (group, kind) -> top-level fields status feedback never reads: core/v1 Secrets' values
SECRET_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {("", "Secret"): ("data", "stringData")}
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def reportable(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """What feedback may read of ``obj``: a Secret without its values, anything else as it is."""
    group, version = split_api_version(str(obj.get("apiVersion") or ""))
    hidden = SECRET_FIELDS.get((group, str(obj.get("kind") or ""))) if version == "v1" else None
    if not hidden:
        return obj
    out = {k: v for k, v in obj.items() if k not in hidden}
    metadata = obj.get("metadata")
    if isinstance(metadata, Mapping) and isinstance(metadata.get("annotations"), Mapping):
        annotations = {k: v for k, v in metadata["annotations"].items() if k != LAST_APPLIED}
        out["metadata"] = {**metadata, "annotations": annotations}
    return out


@dataclass(frozen=True, slots=True)
class FeedbackResult:
    """The `statusFeedback.values` of one manifest and what went wrong computing them."""

    values: tuple[JsonObject, ...] = ()
    errors: tuple[str, ...] = ()


def evaluate(rules: Sequence[FeedbackRule], obj: Mapping[str, Any]) -> FeedbackResult:
    """Every value the rules select from `obj`, in rule order; errors name the rule and the path."""
    group, version = split_api_version(str(obj.get("apiVersion") or ""))
    kind = str(obj.get("kind") or "")
    shown = reportable(obj)
    values: list[JsonObject] = []
    errors: list[str] = []
    for rule in rules:
        if rule.type == WELL_KNOWN_STATUS:
            paths = WELL_KNOWN.get((group, kind))
            if not paths:
                errors.append(f"no well-known status for kind {kind} of group {group or 'core'}")
                continue
        elif rule.type == JSON_PATHS:
            paths = rule.json_paths
        else:
            errors.append(f"unknown feedback rule type {rule.type!r}")
            continue
        for path in paths:
            if path.version and path.version != version:
                errors.append(f"{path.name}: the path is for version {path.version}, the object is {version}")
                continue
            try:
                value = read_value(path, shown)
                if value is None and shown is not obj and jsonpath.find(path.path, obj):
                    errors.append(f"{path.name}: the path reads a Secret's values, which are never reported")
                    continue
            except (JsonPathError, ValueError) as exc:
                errors.append(f"{path.name}: {exc}")
                continue
            if value is not None:
                values.append(value)
    return FeedbackResult(tuple(values), tuple(errors))


def read_value(path: JsonPath, obj: Mapping[str, Any]) -> JsonObject | None:
    """One `{name, fieldValue}`, or None when the path selects nothing (or only nulls)."""
    found = jsonpath.find(path.path, obj)
    if not found:
        return None
    value: Any = found[0] if len(found) == 1 else found
    if value is None:
        return None
    return {"name": path.name, "fieldValue": field_value(value)}


def field_value(value: Any) -> JsonObject:
    """OCM's FieldValue: scalars keep their type; everything else is compact, key-sorted JSON."""
    if isinstance(value, bool):
        return {"type": "Boolean", "boolean": value}
    if isinstance(value, int):
        return {"type": "Integer", "integer": value}
    if isinstance(value, str):
        return {"type": "String", "string": value}
    raw = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    if len(raw) > MAX_JSON_RAW:
        raise ValueError(f"the JSON value is {len(raw)} bytes, more than the {MAX_JSON_RAW} allowed")
    return {"type": "JsonRaw", "jsonRaw": raw.decode()}


def problem(obj: Mapping[str, Any] | None) -> str | None:
    """Why a live object is unhealthy, in a few words; None when it is fine or we cannot tell."""
    if not obj:
        return None
    group, _ = split_api_version(str(obj.get("apiVersion") or ""))
    kind = obj.get("kind")
    status = obj.get("status") or {}
    if not isinstance(status, Mapping):
        return None
    if (group, kind) == ("argoproj.io", "Application"):
        health = (status.get("health") or {}).get("status")
        if health == "Degraded":
            message = (status.get("health") or {}).get("message")
            return f"Argo CD reports health Degraded{f': {message}' if message else ''}"
        phase = (status.get("operationState") or {}).get("phase")
        if phase in ("Failed", "Error"):
            message = (status.get("operationState") or {}).get("message")
            return f"Argo CD sync {phase}{f': {message}' if message else ''}"
        return None
    for condition in status.get("conditions") or ():
        if not isinstance(condition, Mapping):
            continue
        ctype, cstatus, reason = condition.get("type"), condition.get("status"), condition.get("reason")
        if (group, kind, ctype, cstatus) == ("batch", "Job", "Failed", "True"):
            return f"job failed: {reason or condition.get('message') or 'no reason given'}"
        if (group, kind, ctype, reason) == ("apps", "Deployment", "Progressing", "ProgressDeadlineExceeded"):
            return f"deployment rollout stalled: {condition.get('message') or reason}"
    if (group, kind) == ("", "Pod") and status.get("phase") == "Failed":
        return f"pod failed: {status.get('reason') or status.get('message') or 'no reason given'}"
    return None
