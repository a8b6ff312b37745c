"""A bundle's manifests, their per-manifest configuration and the delete option, parsed (pure).

The ManifestBundle payload is the JSON upstream Maestro and OCM's ManifestWork spell:
`manifests`, `manifestConfigs` [{resourceIdentifier, feedbackRules, updateStrategy}] and
`deleteOption` {propagationPolicy, selectivelyOrphans {orphaningRules}}. `plans` parses each
manifest (`parse_manifest`), resolves its resource through a backend, finds its config
(`find_config`) and decides what to orphan (`DeleteOption.orphans`); `bundle_status` and `records` use
`ManifestMeta` and `ObjectRef`. Errors name the manifest (ordinal, kind, namespace/name) and the
field, so a status message says exactly what to fix.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from maestro.agent.errors import ManifestError

JsonObject = dict[str, Any]

# Update strategies (OCM's UpdateStrategyType values).
SERVER_SIDE_APPLY = "ServerSideApply"
UPDATE = "Update"
CREATE_ONLY = "CreateOnly"
READ_ONLY = "ReadOnly"
STRATEGIES = (SERVER_SIDE_APPLY, UPDATE, CREATE_ONLY, READ_ONLY)

# Delete propagation policies (OCM's DeletePropagationPolicyType values).
FOREGROUND = "Foreground"
ORPHAN = "Orphan"
SELECTIVELY_ORPHAN = "SelectivelyOrphan"
POLICIES = (FOREGROUND, ORPHAN, SELECTIVELY_ORPHAN)

# Feedback rule types.
WELL_KNOWN_STATUS = "WellKnownStatus"
JSON_PATHS = "JSONPaths"

DEFAULT_FIELD_MANAGER = "fleetplane-maestro-agent"

# The marker on every object the agent writes as its own: the value ties it to one bundle.
MARKER_LABEL = "agent.maestro.fleetplane.io/resource-id"

# Fields the API server owns; a manifest that carries them (copied from a live object) must not
# send them back, or the write fails (uid, resourceVersion) or fights the server (status).
_SERVER_METADATA = ("uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp")
_SERVER_METADATA_ALSO = ("deletionGracePeriodSeconds", "managedFields", "selfLink")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """Where an object lives in the API: enough to build its URL and to compare identities."""

    group: str
    version: str
    resource: str
    namespace: str
    name: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Identity across API versions: moving a manifest from v1beta1 to v1 is the same object."""
        return (self.group, self.resource, self.namespace, self.name)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def describe(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.resource}.{self.group} {where}" if self.group else f"{self.resource} {where}"


@dataclass(frozen=True, slots=True)
class ManifestMeta:
    """One manifest's identity: the status's `resourceMeta`."""

    ordinal: int
    group: str
    version: str
    kind: str
    resource: str
    namespace: str
    name: str

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.group, self.version, self.resource, self.namespace, self.name)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.ref.key

    def describe(self) -> str:
        """`Deployment apps/web` style: what a person looks for with kubectl."""
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind or 'manifest'} {where or '?'}"

    def to_json(self) -> JsonObject:
        return {
            "ordinal": self.ordinal,
            "group": self.group,
            "version": self.version,
            "kind": self.kind,
            "resource": self.resource,
            "name": self.name,
            "namespace": self.namespace,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ManifestMeta:
        return cls(
            ordinal=int(raw.get("ordinal", 0)),
            group=str(raw.get("group", "")),
            version=str(raw.get("version", "")),
            kind=str(raw.get("kind", "")),
            resource=str(raw.get("resource", "")),
            namespace=str(raw.get("namespace", "")),
            name=str(raw.get("name", "")),
        )


@dataclass(frozen=True, slots=True)
class ParsedManifest:
    """A manifest before its resource is known (that needs the cluster's discovery)."""

    ordinal: int
    group: str
    version: str
    kind: str
    namespace: str
    name: str
    body: JsonObject

    def meta(self, resource: str = "", *, namespaced: bool = True) -> ManifestMeta:
        return ManifestMeta(
            ordinal=self.ordinal,
            group=self.group,
            version=self.version,
            kind=self.kind,
            resource=resource,
            namespace=self.namespace if namespaced else "",
            name=self.name,
        )


@dataclass(frozen=True, slots=True)
class JsonPath:
    name: str
    path: str
    version: str = ""


@dataclass(frozen=True, slots=True)
class FeedbackRule:
    type: str
    json_paths: tuple[JsonPath, ...] = ()


@dataclass(frozen=True, slots=True)
class UpdateStrategy:
    type: str = SERVER_SIDE_APPLY
    force: bool = False
    field_manager: str = DEFAULT_FIELD_MANAGER


@dataclass(frozen=True, slots=True)
class ManifestConfig:
    """One `manifestConfigs` entry; `error` is set when it is malformed (the manifest then fails)."""

    group: str
    resource: str
    namespace: str
    name: str
    strategy: UpdateStrategy | None = None
    feedback_rules: tuple[FeedbackRule, ...] = ()
    error: str | None = None

    def matches(self, meta: ManifestMeta) -> bool:
        # `*` in name/namespace is our extension, so one config can cover many manifests.
        return (
            self.group == meta.group
            and self.resource == meta.resource
            and self.name in (meta.name, "*")
            and self.namespace in (meta.namespace, "*")
        )


@dataclass(frozen=True, slots=True)
class DeleteOption:
    policy: str = FOREGROUND
    # Keys (group, resource, namespace, name) kept when the bundle is deleted.
    selectively_orphaned: frozenset[tuple[str, str, str, str]] = field(default_factory=frozenset)

    def orphans(self, ref: ObjectRef) -> bool:
        """Whether deleting the bundle (or dropping this manifest from it) leaves `ref` in place."""
        if self.policy == ORPHAN:
            return True
        return self.policy == SELECTIVELY_ORPHAN and ref.key in self.selectively_orphaned


def split_api_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


def parse_manifest(ordinal: int, raw: Any) -> ParsedManifest:
    """Validate one manifest; a `ManifestError` says which one and which field is wrong."""
    if not isinstance(raw, Mapping):
        raise ManifestError(f"manifest {ordinal}: expected a Kubernetes object, got {type(raw).__name__}")
    kind = raw.get("kind")
    metadata = raw.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
    label = f"manifest {ordinal} ({kind or '?'} {f'{namespace}/' if namespace else ''}{name or '?'})"
    api_version = raw.get("apiVersion")
    if not isinstance(api_version, str) or not api_version or api_version.count("/") > 1:
        raise ManifestError(f"{label}: apiVersion must be 'version' or 'group/version', got {api_version!r}")
    if not isinstance(kind, str) or not kind:
        raise ManifestError(f"{label}: kind is required")
    if not isinstance(metadata, Mapping):
        raise ManifestError(f"{label}: metadata is required")
    if not isinstance(name, str) or not name:
        # generateName would create a new object on every apply: nothing to track or update.
        raise ManifestError(f"{label}: metadata.name is required (generateName is not supported)")
    if namespace is not None and not isinstance(namespace, str):
        raise ManifestError(f"{label}: metadata.namespace must be a string")
    group, version = split_api_version(api_version)
    return ParsedManifest(ordinal, group, version, kind, namespace or "", name, dict(raw))


def desired_body(manifest: ParsedManifest, meta: ManifestMeta, marker: str | None) -> JsonObject:
    """What the agent writes: the manifest without server-owned fields, plus our marker if ours."""
    body = {k: v for k, v in manifest.body.items() if k != "status"}
    metadata = {
        k: v
        for k, v in manifest.body["metadata"].items()
        if k not in _SERVER_METADATA and k not in _SERVER_METADATA_ALSO
    }
    metadata["name"] = meta.name
    if meta.namespace:
        metadata["namespace"] = meta.namespace
    else:
        metadata.pop("namespace", None)
    if marker is not None:
        metadata["labels"] = {**(metadata.get("labels") or {}), MARKER_LABEL: marker}
    body["metadata"] = metadata
    return body


def marker_value(resource_id: str) -> str:
    """The marker label's value: the resource id itself when it is a valid label value (UUIDs are)."""
    if len(resource_id) <= 63 and _LABEL_VALUE.match(resource_id):
        return resource_id
    return "h-" + hashlib.sha256(resource_id.encode()).hexdigest()[:40]


def has_marker(obj: Mapping[str, Any] | None, resource_id: str) -> bool:
    if not obj:
        return False
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return bool(labels.get(MARKER_LABEL) == marker_value(resource_id))


def parse_manifest_configs(raw: Any) -> tuple[ManifestConfig, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise ManifestError(f"manifestConfigs must be a list, got {type(raw).__name__}")
    return tuple(_parse_config(i, entry) for i, entry in enumerate(raw))


def _parse_config(index: int, raw: Any) -> ManifestConfig:
    where = f"manifestConfigs[{index}]"
    if not isinstance(raw, Mapping):
        raise ManifestError(f"{where}: expected an object, got {type(raw).__name__}")
    ident = raw.get("resourceIdentifier") or {}
    if not isinstance(ident, Mapping) or not ident.get("resource"):
        raise ManifestError(f"{where}.resourceIdentifier.resource is required")
    base = ManifestConfig(
        group=str(ident.get("group") or ""),
        resource=str(ident["resource"]),
        namespace=str(ident.get("namespace") or ""),
        name=str(ident.get("name") or ""),
    )
    try:
        strategy = _parse_strategy(where, raw.get("updateStrategy"))
        rules = tuple(
            _parse_rule(f"{where}.feedbackRules[{i}]", r)
            for i, r in enumerate(raw.get("feedbackRules") or ())
        )
    except ManifestError as exc:
        # A bad config fails only the manifests it names, not the whole bundle.
        return ManifestConfig(base.group, base.resource, base.namespace, base.name, error=str(exc))
    return ManifestConfig(base.group, base.resource, base.namespace, base.name, strategy, rules)


def _parse_strategy(where: str, raw: Any) -> UpdateStrategy | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or raw.get("type") not in STRATEGIES:
        got = raw.get("type") if isinstance(raw, Mapping) else raw
        raise ManifestError(
            f"{where}.updateStrategy.type must be one of {', '.join(STRATEGIES)}, got {got!r}"
        )
    ssa = raw.get("serverSideApply") or {}
    return UpdateStrategy(
        type=str(raw["type"]),
        force=bool(ssa.get("force", False)),
        field_manager=str(ssa.get("fieldManager") or DEFAULT_FIELD_MANAGER),
    )


def _parse_rule(where: str, raw: Any) -> FeedbackRule:
    if not isinstance(raw, Mapping) or raw.get("type") not in (WELL_KNOWN_STATUS, JSON_PATHS):
        got = raw.get("type") if isinstance(raw, Mapping) else raw
        raise ManifestError(f"{where}.type must be {WELL_KNOWN_STATUS} or {JSON_PATHS}, got {got!r}")
    paths: list[JsonPath] = []
    for i, entry in enumerate(raw.get("jsonPaths") or ()):
        if not isinstance(entry, Mapping) or not entry.get("name") or not entry.get("path"):
            raise ManifestError(f"{where}.jsonPaths[{i}]: name and path are required")
        paths.append(JsonPath(str(entry["name"]), str(entry["path"]), str(entry.get("version") or "")))
    if raw["type"] == JSON_PATHS and not paths:
        raise ManifestError(f"{where}.jsonPaths: a JSONPaths rule needs at least one path")
    return FeedbackRule(str(raw["type"]), tuple(paths))


def lenient_manifest_configs(raw: Sequence[Mapping[str, Any]]) -> tuple[ManifestConfig, ...]:
    """The configs of a bundle already applied; ``()`` when malformed (the apply reported that on
    its manifests, and status goes on without them)."""
    try:
        return parse_manifest_configs(list(raw))
    except ManifestError:
        return ()


def find_config(configs: Sequence[ManifestConfig], meta: ManifestMeta) -> ManifestConfig | None:
    """The first config naming this manifest (OCM takes the first match too)."""
    return next((c for c in configs if c.matches(meta)), None)


def parse_delete_option(raw: Any) -> DeleteOption:
    """OCM's default when a bundle names none is Foreground: delete everything it applied."""
    if not raw:
        return DeleteOption()
    if not isinstance(raw, Mapping):
        raise ManifestError(f"deleteOption must be an object, got {type(raw).__name__}")
    policy = raw.get("propagationPolicy") or FOREGROUND
    if policy not in POLICIES:
        raise ManifestError(
            f"deleteOption.propagationPolicy must be one of {', '.join(POLICIES)}, got {policy!r}"
        )
    keys: set[tuple[str, str, str, str]] = set()
    rules = (raw.get("selectivelyOrphans") or {}).get("orphaningRules") or ()
    for i, rule in enumerate(rules):
        if not isinstance(rule, Mapping) or not rule.get("resource") or not rule.get("name"):
            raise ManifestError(
                f"deleteOption.selectivelyOrphans.orphaningRules[{i}]: resource and name are required"
            )
        keys.add(
            (
                str(rule.get("group") or ""),
                str(rule["resource"]),
                str(rule.get("namespace") or ""),
                str(rule["name"]),
            )
        )
    return DeleteOption(str(policy), frozenset(keys))


# Kinds the memory backend treats as cluster-scoped (a real cluster answers through discovery).
CLUSTER_SCOPED_KINDS = frozenset(
    {
        "Namespace",
        "Node",
        "PersistentVolume",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "StorageClass",
        "PriorityClass",
        "APIService",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
        "IngressClass",
        "RuntimeClass",
        "CSIDriver",
    }
)


def guess_resource(kind: str) -> str:
    """The plural resource name Kubernetes' own conventions give a kind (no discovery needed)."""
    lower = kind.lower()
    if lower.endswith(("s", "x", "z", "ch", "sh")):
        return lower + "es"
    if lower.endswith("y") and lower[-2:-1] not in ("a", "e", "i", "o", "u"):
        return lower[:-1] + "ies"
    return lower + "s"
