"""Checking events, ManifestBundle and ManifestBundleStatus payloads that come from outside.

Called by `bundle_events` when it decodes a source's spec event or an agent's status event; the
gRPC edge and the Kafka consumer reach it through there. Every error is an `InvalidArgument`
naming the attribute or the JSON path of the bad part (`data.manifests[2].metadata.name`) and how
to fix it.

Everything the server stores from outside passes `check_event` (the attributes and extensions)
and the payload checks here, so it is bounded and free of NUL characters: PostgreSQL's text and
jsonb cannot hold U+0000, and one such value would fail the transaction of every item stored
with it (a whole PublishBatch, a whole ingest batch). Refused here, it fails its own item only.
"""

from __future__ import annotations

from typing import Any

import orjson

from maestro.api import bundles, errors, events

DEFAULT_MAX_BUNDLE_BYTES = 1 << 20

# An attribute: the event's id, source, type and every extension but `metadata`, in UTF-8 bytes.
# The source is kept in a b-tree index, whose entries PostgreSQL caps near 2,700 bytes: 2 KiB
# leaves room for the id beside it. Upstream's attributes are names, ids, numbers and hashes.
MAX_ATTRIBUTE_BYTES = 2048
# The `metadata` extension, the work's ObjectMeta as JSON: Kubernetes caps an object's
# annotations at 256 KiB, and the rest of an ObjectMeta is small beside them.
MAX_METADATA_BYTES = 256 * 1024
# A manifest-bundle event has about ten extensions; many more is not one of ours.
MAX_EXTENSIONS = 64
# CloudEvents advises names of at most 20 characters.
MAX_EXTENSION_NAME_BYTES = 64
# A label key or value in the work's metadata (Kubernetes allows 317 and 63: these are lenient,
# they only keep one label from taking the whole metadata limit).
MAX_LABEL_BYTES = 1024

_INT64_MAX = (1 << 63) - 1
# How JSON writes U+0000; a document whose bytes lack it holds no NUL (raw control characters
# are not JSON), so the full walk runs only for documents that may hold one.
_JSON_NUL = b"\\u0000"


def shown(text: str, limit: int = 64) -> str:
    """`text` quoted for an error message: NUL visible, cut short (a message must stay small)."""
    cut = text if len(text) <= limit else text[:limit] + "..."
    return repr(cut)


def check_text(value: str, field: str, max_bytes: int = MAX_ATTRIBUTE_BYTES) -> str:
    """A text attribute or field: refused with a NUL character or over `max_bytes` of UTF-8."""
    if "\x00" in value:
        raise errors.InvalidArgument(field, "contains a NUL byte", "remove it")
    # A character is at most 4 bytes: most texts are measured without encoding them.
    if len(value) * 4 > max_bytes:
        size = len(value.encode())
        if size > max_bytes:
            raise errors.TooLarge(field, size, max_bytes, "shorten it")
    return value


def check_bytes(value: bytes, field: str, max_bytes: int = MAX_ATTRIBUTE_BYTES) -> bytes:
    if b"\x00" in value:
        raise errors.InvalidArgument(field, "contains a NUL byte", "remove it")
    if len(value) > max_bytes:
        raise errors.TooLarge(field, len(value), max_bytes, "shorten it")
    return value


def check_event(event: events.CloudEvent) -> None:
    """Every attribute and extension of an event from outside: no NUL, none over its limit."""
    check_text(event.id, "id")
    check_text(event.source, "source")
    check_text(event.type, "type")
    check_text(event.spec_version, "specversion")
    if event.data_content_type is not None:
        check_text(event.data_content_type, "datacontenttype")
    if len(event.extensions) > MAX_EXTENSIONS:
        raise errors.InvalidArgument(
            "attributes",
            f"has {len(event.extensions)} extensions, over the limit of {MAX_EXTENSIONS}",
            "send only the manifest-bundle extensions",
        )
    for name, value in event.extensions.items():
        check_text(name, f"extension {shown(name)}", MAX_EXTENSION_NAME_BYTES)
        limit = MAX_METADATA_BYTES if name == events.METADATA else MAX_ATTRIBUTE_BYTES
        if isinstance(value, str):
            check_text(value, name, limit)
        elif isinstance(value, bytes):
            check_bytes(value, name, limit)


def check_no_nul(doc: Any, raw: bytes | str, field: str) -> None:
    """Refuse a NUL character in any key or string of `doc`, the decoded JSON `raw`."""
    if isinstance(raw, bytes) and _JSON_NUL not in raw:
        return
    if isinstance(raw, str) and _JSON_NUL.decode() not in raw:
        return
    # A walk with an explicit stack: JSON nests deeper than Python's recursion allows.
    stack: list[tuple[Any, Any]] = [(doc, None)]
    while stack:
        value, trail = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                raise errors.InvalidArgument(_path(field, trail), "contains a NUL character", "remove it")
        elif isinstance(value, dict):
            for key, item in value.items():
                if "\x00" in key:
                    raise errors.InvalidArgument(
                        _path(field, trail), f"has a key with a NUL character, {shown(key)}", "remove it"
                    )
                stack.append((item, (trail, key)))
        elif isinstance(value, list):
            stack.extend((item, (trail, i)) for i, item in enumerate(value))


def _path(field: str, trail: Any) -> str:
    parts: list[str] = []
    while trail is not None:
        trail, key = trail
        parts.append(f"[{key}]" if isinstance(key, int) else f".{key}")
    return field + "".join(reversed(parts))


def check_metadata(meta: bundles.JsonObject, raw: bytes | str, field: str = events.METADATA) -> None:
    """The work's ObjectMeta as a source sends it (stored as jsonb, filtered on by its labels)."""
    check_no_nul(meta, raw, field)
    for key in ("labels", "annotations"):
        pairs = meta.get(key)
        if pairs is None:
            continue
        if not isinstance(pairs, dict) or not all(isinstance(v, str) for v in pairs.values()):
            raise errors.InvalidArgument(
                f"{field}.{key}", "must map strings to strings", f"send {key} as a JSON object of strings"
            )
        if key == "labels":
            for name, value in pairs.items():
                check_text(name, f"{field}.labels key {shown(name)}", MAX_LABEL_BYTES)
                check_text(value, f"{field}.labels[{shown(name)}]", MAX_LABEL_BYTES)
    # An ObjectMeta's generation is an int64 to the Go sources that read it back.
    generation = meta.get("generation")
    if generation is not None and (
        not isinstance(generation, int) or isinstance(generation, bool) or not 0 <= generation <= _INT64_MAX
    ):
        raise errors.InvalidArgument(
            f"{field}.generation",
            f"{generation!r} is not an integer in 0..2^63-1",
            "send the work's generation",
        )
    for key in ("name", "namespace", "uid", "resourceVersion"):
        value = meta.get(key)
        if value is not None and not isinstance(value, str):
            raise errors.InvalidArgument(f"{field}.{key}", "must be a string")


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
    body = decode_json(data, field, max_bytes=max_bytes)
    # What the agent applies comes back in its status reports (names in resourceMeta, values in
    # feedback), which refuse NUL: a NUL here would leave the bundle's status unreportable.
    check_no_nul(body, data, field)
    return validate_manifest_bundle(body, field)


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
    check_no_nul(body, data, field)
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
