"""Checking ManifestBundle and ManifestBundleStatus payloads that come from outside.

Called by `bundle_events` when it decodes a source's spec event or an agent's status event; the
gRPC edge and the Kafka consumer reach it through there. Every error is an `InvalidArgument`
naming the JSON path of the bad part (`data.manifests[2].metadata.name`) and how to fix it.
"""

from __future__ import annotations

from typing import Any

import orjson

from maestro.api import bundles, errors

DEFAULT_MAX_BUNDLE_BYTES = 1 << 20

PROPAGATION_POLICIES = frozenset({"Foreground", "Orphan", "SelectivelyOrphan"})
UPDATE_STRATEGIES = frozenset({"Update", "CreateOnly", "ServerSideApply", "ReadOnly"})
FEEDBACK_RULE_TYPES = frozenset({"WellKnownStatus", "JSONPaths"})


def decode_json(data: bytes, field: str, *, max_bytes: int | None = None) -> Any:
    if max_bytes is not None and len(data) > max_bytes:
        raise errors.TooLarge(field, len(data), max_bytes)
    if not data:
        raise errors.InvalidArgument(field, "is empty", "send the payload as JSON")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise errors.InvalidArgument(field, f"is not valid JSON: {exc}", "send the payload as JSON") from exc


def parse_manifest_bundle(
    data: bytes, *, max_bytes: int = DEFAULT_MAX_BUNDLE_BYTES, field: str = "data"
) -> bundles.ManifestBundle:
    """Decode and check a ManifestBundle sent as JSON bytes."""
    return validate_manifest_bundle(decode_json(data, field, max_bytes=max_bytes), field)


def validate_manifest_bundle(obj: Any, field: str = "data") -> bundles.ManifestBundle:
    body = _object(obj, field)
    manifests = _list(body.get("manifests"), f"{field}.manifests", required=True)
    if not manifests:
        raise errors.InvalidArgument(f"{field}.manifests", "is empty", "give at least one manifest")
    for i, manifest in enumerate(manifests):
        _check_manifest(manifest, f"{field}.manifests[{i}]")

    delete_option = body.get("deleteOption")
    if delete_option is not None:
        _check_delete_option(delete_option, f"{field}.deleteOption")

    configs = _list(body.get("manifestConfigs"), f"{field}.manifestConfigs", required=False)
    for i, config in enumerate(configs):
        _check_manifest_config(config, f"{field}.manifestConfigs[{i}]")

    executer = body.get("executer")
    if executer is not None:
        _object(executer, f"{field}.executer")

    return bundles.ManifestBundle(
        manifests=manifests,
        delete_option=delete_option,
        manifest_configs=configs,
        executer=executer,
    )


def parse_bundle_status(data: bytes, *, sequence_id: int, field: str = "data") -> bundles.BundleStatus:
    """Decode and check a ManifestBundleStatus sent as JSON bytes."""
    body = _object(decode_json(data, field), field)
    conditions = _list(body.get("conditions"), f"{field}.conditions", required=False)
    for i, condition in enumerate(conditions):
        path = f"{field}.conditions[{i}]"
        cond = _object(condition, path)
        _string(cond.get("type"), f"{path}.type", "name the condition type, e.g. Applied")
        _string(cond.get("status"), f"{path}.status", "give the condition status: True, False or Unknown")
    resource_status = _list(body.get("resourceStatus"), f"{field}.resourceStatus", required=False)
    for i, item in enumerate(resource_status):
        _object(item, f"{field}.resourceStatus[{i}]")
    return bundles.BundleStatus(
        conditions=conditions, resource_status=resource_status, sequence_id=sequence_id
    )


def _check_manifest(manifest: Any, path: str) -> None:
    obj = _object(manifest, path)
    _string(obj.get("apiVersion"), f"{path}.apiVersion", "set apiVersion, e.g. argoproj.io/v1alpha1")
    _string(obj.get("kind"), f"{path}.kind", "set kind, e.g. Application")
    meta = _object(obj.get("metadata"), f"{path}.metadata")
    _string(meta.get("name"), f"{path}.metadata.name", "give every manifest a metadata.name")


def _check_delete_option(value: Any, path: str) -> None:
    option = _object(value, path)
    _enum(option.get("propagationPolicy"), f"{path}.propagationPolicy", PROPAGATION_POLICIES)
    orphans = option.get("selectivelyOrphans")
    if orphans is not None:
        rules = _list(
            _object(orphans, f"{path}.selectivelyOrphans").get("orphaningRules"),
            f"{path}.selectivelyOrphans.orphaningRules",
            required=False,
        )
        for i, rule in enumerate(rules):
            _check_resource_identifier(rule, f"{path}.selectivelyOrphans.orphaningRules[{i}]")


def _check_manifest_config(value: Any, path: str) -> None:
    config = _object(value, path)
    _check_resource_identifier(config.get("resourceIdentifier"), f"{path}.resourceIdentifier")
    rules = _list(config.get("feedbackRules"), f"{path}.feedbackRules", required=False)
    for i, rule in enumerate(rules):
        _check_feedback_rule(rule, f"{path}.feedbackRules[{i}]")
    strategy = config.get("updateStrategy")
    if strategy is not None:
        _check_update_strategy(strategy, f"{path}.updateStrategy")


def _check_resource_identifier(value: Any, path: str) -> None:
    ident = _object(value, path)
    _string(ident.get("resource"), f"{path}.resource", "name the resource (plural), e.g. applications")
    _string(ident.get("name"), f"{path}.name", "name the object the rule is for")
    for key in ("group", "namespace"):
        if key in ident and not isinstance(ident[key], str):
            raise errors.InvalidArgument(f"{path}.{key}", "must be a string")


def _check_feedback_rule(value: Any, path: str) -> None:
    rule = _object(value, path)
    kind = _enum(rule.get("type"), f"{path}.type", FEEDBACK_RULE_TYPES)
    paths = _list(rule.get("jsonPaths"), f"{path}.jsonPaths", required=False)
    if kind == "JSONPaths" and not paths:
        raise errors.InvalidArgument(
            f"{path}.jsonPaths", "is empty for a JSONPaths rule", "list the {name, path} pairs to report"
        )
    for i, item in enumerate(paths):
        entry = _object(item, f"{path}.jsonPaths[{i}]")
        _string(entry.get("name"), f"{path}.jsonPaths[{i}].name", "name the reported value")
        _string(entry.get("path"), f"{path}.jsonPaths[{i}].path", "give a JSON path such as .status.health")


def _check_update_strategy(value: Any, path: str) -> None:
    strategy = _object(value, path)
    _enum(strategy.get("type"), f"{path}.type", UPDATE_STRATEGIES)
    ssa = strategy.get("serverSideApply")
    if ssa is not None:
        opts = _object(ssa, f"{path}.serverSideApply")
        if "force" in opts and not isinstance(opts["force"], bool):
            raise errors.InvalidArgument(f"{path}.serverSideApply.force", "must be true or false")
        if "fieldManager" in opts and not isinstance(opts["fieldManager"], str):
            raise errors.InvalidArgument(f"{path}.serverSideApply.fieldManager", "must be a string")


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise errors.InvalidArgument(path, f"must be a JSON object, got {_kind(value)}")
    return value


def _list(value: Any, path: str, *, required: bool) -> list[Any]:
    if value is None and not required:
        return []
    if not isinstance(value, list):
        raise errors.InvalidArgument(path, f"must be a JSON array, got {_kind(value)}")
    return value


def _string(value: Any, path: str, fix: str) -> str:
    if not isinstance(value, str) or not value:
        raise errors.InvalidArgument(
            path, "is missing or empty" if value in (None, "") else "must be a string", fix
        )
    return value


def _enum(value: Any, path: str, allowed: frozenset[str]) -> str:
    choices = ", ".join(sorted(allowed))
    if value not in allowed:
        raise errors.InvalidArgument(path, f"is {value!r}", f"use one of {choices}")
    assert isinstance(value, str)
    return value


_KINDS: dict[type, str] = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if type(value) in _KINDS:
        return _KINDS[type(value)]
    return "a number" if isinstance(value, int | float) else type(value).__name__
