"""Maestro bundle status -> the ``status`` of the hub mirror Application.

Called by the status aggregation controller for each ManifestBundleStatus it receives (from the
query service's watch or its periodic full list). The input is the status JSON the agent reported:
work ``conditions`` (Applied, Available, Degraded, Deleted...) and ``resourceStatus[]`` with the
feedback values named in ``controllers.contract.FEEDBACK_PATHS``. The output is a complete
``status`` for the hub Application in Argo CD's shape (``sync``, ``health``, ``conditions``,
``operationState``, ``resources``, ``summary``), deterministic for a given input (no clock), so
an unchanged report yields an identical patch that ``batching.WriteBatcher`` can skip. The
result replaces the whole ``status`` (write it with an update or server-side apply of the status
subresource; a JSON merge patch would keep fields a newer report no longer has).

Anything not reported is ``Unknown`` and a condition says why. Problems on the managed cluster
(the agent could not apply the Application, feedback could not be read) become
``PropagationError`` / ``PropagationWarning`` conditions naming the cluster, next to the worker
Application's own conditions (``ComparisonError`` for a bad repo URL, ...).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from controllers import contract
from kubeio.conditions import describe, has_status

UNKNOWN = "Unknown"
ERROR = "PropagationError"
WARNING = "PropagationWarning"
#: keys of an Argo CD ResourceStatus worth carrying to the hub
_RESOURCE_KEYS = (
    "group",
    "version",
    "kind",
    "namespace",
    "name",
    "status",
    "health",
    "hook",
    "requiresPruning",
    "syncWave",
)


def decode_feedback(values: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """Status feedback ``values`` as ``name -> Python value``, and what could not be decoded."""
    decoded: dict[str, Any] = {}
    problems: list[str] = []
    for item in values:
        name = item.get("name")
        field = item.get("fieldValue") or {}
        kind = field.get("type")
        key = {"String": "string", "Integer": "integer", "Boolean": "boolean", "JsonRaw": "jsonRaw"}.get(
            str(kind)
        )
        if not isinstance(name, str) or key is None:
            problems.append(f"feedback value {name!r} has unknown type {kind!r}")
            continue
        value = field.get(key)
        if kind == "JsonRaw":
            try:
                value = json.loads(value) if isinstance(value, str) else value
            except json.JSONDecodeError as exc:
                problems.append(f"feedback value {name!r} is not valid JSON ({exc.msg})")
                continue
        decoded[name] = value
    return decoded, problems


def application_status(
    bundle_status: Mapping[str, Any] | None, *, cluster: str, max_resources: int = 500
) -> dict[str, Any]:
    """The hub Application ``status`` for the worker Application's reported state on ``cluster``."""
    conditions: list[dict[str, Any]] = []
    status = bundle_status or {}
    work_conditions = {c.get("type"): c for c in status.get("conditions") or [] if isinstance(c, Mapping)}
    resource = _application_resource(status.get("resourceStatus") or [])
    feedback, problems = decode_feedback(((resource or {}).get("statusFeedback") or {}).get("values") or [])

    app_conditions = feedback.get(contract.FEEDBACK_CONDITIONS)
    if isinstance(app_conditions, list):
        conditions.extend(_app_condition(c) for c in app_conditions if isinstance(c, Mapping))

    deleted = has_status(work_conditions.get("Deleted"), "True")
    if not status or not work_conditions:
        conditions.append(
            _condition(
                WARNING,
                f"cluster {cluster}: no status reported yet; the work has not reached the cluster's "
                "Maestro agent (check that the agent runs and its consumer is registered)",
            )
        )
    for name, wanted, severity, what in (
        ("Applied", "False", ERROR, "could not apply the Application"),
        ("Degraded", "True", ERROR, "reports the work as degraded"),
    ):
        cond = work_conditions.get(name)
        if has_status(cond, wanted):
            conditions.append(_condition(severity, f"cluster {cluster} {what}: {describe(cond)}", cond))
    for cond in (resource or {}).get("conditions") or []:
        if not isinstance(cond, Mapping) or cond.get("status") != "False":
            continue
        severity = ERROR if cond.get("type") == "Applied" else WARNING
        conditions.append(
            _condition(severity, f"cluster {cluster}: {cond.get('type')} is False: {describe(cond)}", cond)
        )
    conditions.extend(_condition(WARNING, f"cluster {cluster}: {p}") for p in problems)

    sync_status = feedback.get(contract.FEEDBACK_SYNC_STATUS)
    health_status = feedback.get(contract.FEEDBACK_HEALTH_STATUS)
    if deleted:
        conditions.append(_condition(WARNING, f"cluster {cluster}: the Application has been deleted there"))
        health_status = "Missing"
    elif (
        work_conditions
        and has_status(work_conditions.get("Applied"), "True")
        and not isinstance(sync_status, str)
    ):
        conditions.append(
            _condition(
                WARNING,
                f"cluster {cluster}: the Application is applied but its Argo CD has not reported "
                "sync status yet (is the cluster's application-controller running?)",
            )
        )

    result: dict[str, Any] = {
        "sync": {"status": sync_status if isinstance(sync_status, str) and sync_status else UNKNOWN},
        "health": {"status": health_status if isinstance(health_status, str) and health_status else UNKNOWN},
        "conditions": conditions,
    }
    if isinstance(feedback.get(contract.FEEDBACK_SYNC_REVISION), str):
        result["sync"]["revision"] = feedback[contract.FEEDBACK_SYNC_REVISION]
    if isinstance(feedback.get(contract.FEEDBACK_SYNC_REVISIONS), list):
        result["sync"]["revisions"] = feedback[contract.FEEDBACK_SYNC_REVISIONS]
    operation = _operation_state(feedback)
    if operation:
        result["operationState"] = operation
    resources = feedback.get(contract.FEEDBACK_RESOURCES)
    if isinstance(resources, list):
        kept = [_resource(r) for r in resources[:max_resources] if isinstance(r, Mapping)]
        result["resources"] = kept
        if len(resources) > max_resources:
            conditions.append(
                _condition(
                    WARNING,
                    f"cluster {cluster}: showing {max_resources} of {len(resources)} resources on the hub",
                )
            )
    if isinstance(feedback.get(contract.FEEDBACK_SUMMARY), Mapping):
        result["summary"] = feedback[contract.FEEDBACK_SUMMARY]
    if isinstance(feedback.get(contract.FEEDBACK_RECONCILED_AT), str):
        result["reconciledAt"] = feedback[contract.FEEDBACK_RECONCILED_AT]
    return result


def _application_resource(resources: Sequence[Any]) -> Mapping[str, Any] | None:
    """The resourceStatus entry of the Application (the bundle's only manifest, by design)."""
    for entry in resources:
        meta = (entry or {}).get("resourceMeta") or {}
        if meta.get("kind") == "Application" or meta.get("resource") == "applications":
            return entry  # type: ignore[no-any-return]
    return resources[0] if resources and isinstance(resources[0], Mapping) else None


def _operation_state(feedback: Mapping[str, Any]) -> dict[str, Any] | None:
    phase = feedback.get(contract.FEEDBACK_OPERATION_PHASE)
    started = feedback.get(contract.FEEDBACK_OPERATION_STARTED_AT)
    if not isinstance(phase, str) or not isinstance(started, str):
        return None  # Argo CD's CRD requires phase and startedAt; a partial state would be rejected
    operation = feedback.get(contract.FEEDBACK_OPERATION)
    state: dict[str, Any] = {
        # also required by the CRD; {"sync": {}} when the agent could not read it
        "operation": operation if isinstance(operation, Mapping) else {"sync": {}},
        "phase": phase,
        "startedAt": started,
    }
    for key, name in (
        ("message", contract.FEEDBACK_OPERATION_MESSAGE),
        ("finishedAt", contract.FEEDBACK_OPERATION_FINISHED_AT),
    ):
        if isinstance(feedback.get(name), str):
            state[key] = feedback[name]
    return state


def _resource(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {k: raw[k] for k in _RESOURCE_KEYS if k in raw}


def _app_condition(raw: Mapping[str, Any]) -> dict[str, Any]:
    out = {"type": str(raw.get("type", "UnknownError")), "message": str(raw.get("message", ""))}
    if raw.get("lastTransitionTime"):
        out["lastTransitionTime"] = raw["lastTransitionTime"]
    return out


def _condition(kind: str, message: str, source: Mapping[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind, "message": message}
    if source and source.get("lastTransitionTime"):
        out["lastTransitionTime"] = source["lastTransitionTime"]
    return out
