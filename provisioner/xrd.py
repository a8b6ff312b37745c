"""What a CompositeResourceDefinition generates, and how its kinds relate.

A definition's ``spec.scope`` says which CRDs the operator serves (:func:`generated_crds`):

- ``LegacyCluster`` (the default): the composite kind (cluster-scoped, what compositions render
  from) and the claim kind (namespaced, what teams apply). A claim is bound to one composite whose
  name is derived from the claim's namespace and name (:func:`claim_to_composite_name`), so a
  restarted operator finds it again instead of creating a second one. :func:`composite_from_claim`
  and :func:`claim_status` map one kind onto the other.
- ``Namespaced`` (Crossplane v2's model): the composite kind alone, namespaced; a team applies the
  composite itself in its namespace, and there is no claim. Its cluster is named after its
  namespace and name (:func:`cluster_name`), since two teams may pick the same name.

Every CRD carries the user's schema plus the machinery fields the provisioner reads and writes.
``fleetplane render`` uses the same functions offline.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from provisioner import api, schema

# Fields the provisioner owns; a definition's schema may not declare them itself.
COMMON_SPEC_FIELDS = (
    "compositionRef",
    "compositionSelector",
    "compositionRevisionRef",
    "compositionUpdatePolicy",
)
COMPOSITE_SPEC_FIELDS = (*COMMON_SPEC_FIELDS, "deletionPolicy", "writeConnectionSecretToRef", "claimRef")
CLAIM_SPEC_FIELDS = (*COMMON_SPEC_FIELDS, "writeConnectionSecretToRef", "resourceRef")
# Claim fields that mean something only on the claim: not copied to its composite.
CLAIM_ONLY_SPEC_FIELDS = ("resourceRef", "writeConnectionSecretToRef")
STATUS_FIELDS = ("conditions", "resources", "compositionRevision", "connectionSecret", "cluster")
MACHINERY_SPEC_FIELDS = tuple(dict.fromkeys((*COMPOSITE_SPEC_FIELDS, *CLAIM_SPEC_FIELDS)))

# Which kind a generated CRD is: a claim's composite, a claim, or a namespaced composite.
_COMPOSITE, _CLAIM, _NAMESPACED_COMPOSITE = "composite", "claim", "namespaced"

COMPOSITE_NAME_MAX = 63
_HASH_LEN = 5


class DefinitionError(Exception):
    """A definition the provisioner cannot serve: ``field`` names where, ``fix`` says what to change."""

    def __init__(self, field: str, message: str, fix: str) -> None:
        super().__init__(f"{field}: {message} — {fix}")
        self.field = field
        self.message = message
        self.fix = fix


def scope(xrd: Mapping[str, Any]) -> str:
    """The definition's ``spec.scope``: ``LegacyCluster`` unless it says ``Namespaced``."""
    value = (xrd.get("spec") or {}).get("scope") or api.LEGACY_CLUSTER
    if value not in api.SCOPES:
        raise DefinitionError(
            "spec.scope",
            f"is {value!r}",
            f"use {api.NAMESPACED} (teams apply the composite in their namespace) or {api.LEGACY_CLUSTER} "
            "(a cluster-scoped composite that teams ask for through a claim)",
        )
    return str(value)


def generated_crds(xrd: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The composite CRD first; under ``LegacyCluster`` the claim CRD (namespaced) after it."""
    spec = xrd.get("spec") or {}
    if not isinstance(spec, Mapping):
        raise DefinitionError("spec", f"is {type(spec).__name__}, not an object", "give the XRD a spec")
    group = _required_str(
        spec, "group", "spec.group", "set the API group of the kinds, e.g. platform.example.org"
    )
    names = _names(spec, "names", "the composite kind, e.g. {kind: XWorkerCluster, plural: xworkerclusters}")
    namespaced = scope(xrd) == api.NAMESPACED
    if namespaced:
        if spec.get("claimNames"):
            raise DefinitionError(
                "spec.claimNames",
                "is set on a Namespaced definition",
                "remove it (teams apply the namespaced composite itself), or set spec.scope: "
                f"{api.LEGACY_CLUSTER} to keep a claim kind",
            )
        return _namespaced_crds(xrd, group, names)
    claim_names = _names(
        spec, "claimNames", "the claim kind, e.g. {kind: WorkerCluster, plural: workerclusters}"
    )
    if names["kind"] == claim_names["kind"]:
        raise DefinitionError(
            "spec.claimNames.kind",
            f"is {claim_names['kind']!r}, the same as spec.names.kind",
            "give the claim its own kind (Crossplane's convention: the composite kind starts with X)",
        )
    if names["plural"] == claim_names["plural"]:
        raise DefinitionError(
            "spec.claimNames.plural",
            f"is {claim_names['plural']!r}, the same as spec.names.plural",
            "give the claim its own plural",
        )
    composite = _kind_crd(xrd, group, names, _COMPOSITE, "Cluster", "composite")
    claim = _kind_crd(xrd, group, claim_names, _CLAIM, "Namespaced", "claim")
    return [composite, claim]


def _namespaced_crds(xrd: Mapping[str, Any], group: str, names: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [_kind_crd(xrd, group, names, _NAMESPACED_COMPOSITE, "Namespaced", "composite")]


def _kind_crd(
    xrd: Mapping[str, Any], group: str, names: Mapping[str, Any], side: str, crd_scope: str, category: str
) -> dict[str, Any]:
    spec = xrd.get("spec") or {}
    versions, storage_index = _versions(spec)
    policy = spec.get("defaultCompositionUpdatePolicy") or "Automatic"
    if policy not in api.UPDATE_POLICIES:
        raise DefinitionError(
            "spec.defaultCompositionUpdatePolicy",
            f"is {policy!r}",
            f"use one of {', '.join(api.UPDATE_POLICIES)}",
        )
    crd_versions = [
        api.crd_version(
            version["name"],
            _merged(_user_schema(version, i), side=side, policy=policy),
            _columns(),
            storage=i == storage_index,
            served=bool(version.get("served", True)),
        )
        for i, version in enumerate(versions)
    ]
    crd = api.crd(
        group=group,
        kind=names["kind"],
        plural=names["plural"],
        scope=crd_scope,
        versions=crd_versions,
        short_names=names.get("shortNames"),
        categories=[category, *(names.get("categories") or [])],
    )
    _owned_by(crd, xrd)
    return crd


def find_definition(
    definitions: Iterable[Mapping[str, Any]], api_version: str, kind: str
) -> dict[str, Any] | None:
    """The definition whose composite or claim kind is ``kind`` in ``api_version``'s group."""
    group = api_version.partition("/")[0]
    for xrd in definitions:
        if xrd.get("kind") != api.XRD_KIND:
            continue
        spec = xrd.get("spec") or {}
        kinds = {(spec.get("names") or {}).get("kind"), (spec.get("claimNames") or {}).get("kind")}
        if spec.get("group") == group and kind in kinds:
            return dict(xrd)
    return None


def is_claim(obj: Mapping[str, Any], xrd: Mapping[str, Any]) -> bool:
    """Whether ``obj`` is of the definition's claim kind (else it is taken as its composite kind)."""
    claim_kind = ((xrd.get("spec") or {}).get("claimNames") or {}).get("kind")
    return claim_kind is not None and obj.get("kind") == claim_kind


def claim_to_composite_name(claim: Mapping[str, Any]) -> str:
    """``<claim-name>-<5 hex>``, the hash of ``<namespace>/<name>``: the same claim always gets the same
    composite, and claims of one name in two namespaces get two. At most 63 characters, because the
    composite's name becomes the cluster's name (a label value, a Maestro consumer, a host name)."""
    metadata = claim.get("metadata") or {}
    name, namespace = str(metadata.get("name", "")), str(metadata.get("namespace", ""))
    if not name or not namespace:
        raise ValueError("a claim needs metadata.name and metadata.namespace to name its composite")
    return _namespaced_name(namespace, name)


def cluster_name(composite: Mapping[str, Any]) -> str:
    """The name of a composite's cluster (its Maestro consumer, inventory entry and folder): a
    cluster-scoped composite's own name; for a namespaced one ``<name>-<5 hex>`` as for a claim, so
    two teams' composites of one name get two clusters."""
    metadata = composite.get("metadata") or {}
    if metadata.get("namespace"):
        return _namespaced_name(str(metadata["namespace"]), str(metadata.get("name", "")))
    return str(metadata.get("name", ""))


def _namespaced_name(namespace: str, name: str) -> str:
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()[:_HASH_LEN]
    base = name[: COMPOSITE_NAME_MAX - _HASH_LEN - 1].rstrip("-.")
    return f"{base}-{digest}"


def claim_ref(claim: Mapping[str, Any]) -> dict[str, str]:
    """``spec.claimRef`` of the claim's composite."""
    metadata = claim.get("metadata") or {}
    return {
        "apiVersion": str(claim.get("apiVersion", "")),
        "kind": str(claim.get("kind", "")),
        "name": str(metadata.get("name", "")),
        "namespace": str(metadata.get("namespace", "")),
    }


def resource_ref(composite: Mapping[str, Any]) -> dict[str, str]:
    """``spec.resourceRef`` of a claim bound to ``composite``."""
    return {
        "apiVersion": str(composite.get("apiVersion", "")),
        "kind": str(composite.get("kind", "")),
        "name": str((composite.get("metadata") or {}).get("name", "")),
    }


def composite_from_claim(claim: Mapping[str, Any], xrd: Mapping[str, Any]) -> dict[str, Any]:
    """The composite a claim asks for: the claim's labels plus the claim labels, its spec minus the
    claim-only fields, and ``claimRef``. Machinery fields the claim leaves empty are left out, so
    applying this never clears what the provisioner set on the composite (e.g. the revision it
    pinned under ``Manual``)."""
    metadata = claim.get("metadata") or {}
    names = (xrd.get("spec") or {}).get("names") or {}
    spec = {
        k: copy.deepcopy(v)
        for k, v in (claim.get("spec") or {}).items()
        if k not in CLAIM_ONLY_SPEC_FIELDS and not (k in MACHINERY_SPEC_FIELDS and v in (None, "", {}))
    }
    spec["claimRef"] = claim_ref(claim)
    secret = (claim.get("spec") or {}).get("writeConnectionSecretToRef") or {}
    if secret.get("name"):
        # The composite writes the connection secret straight into the claim's namespace: one copy
        # of the kubeconfig, where the team that asked for it can read it.
        spec["writeConnectionSecretToRef"] = {
            "name": secret["name"],
            "namespace": str(metadata.get("namespace")),
        }
    labels = {
        **(metadata.get("labels") or {}),
        api.LABEL_CLAIM_NAME: str(metadata.get("name", "")),
        api.LABEL_CLAIM_NAMESPACE: str(metadata.get("namespace", "")),
    }
    return {
        "apiVersion": str(claim.get("apiVersion", "")),
        "kind": str(names.get("kind", "")),
        "metadata": {"name": claim_to_composite_name(claim), "labels": labels},
        "spec": spec,
    }


def claim_status(claim: Mapping[str, Any], composite: Mapping[str, Any]) -> dict[str, Any]:
    """The claim's ``status`` once its composite has one: the composite's ``Synced`` and ``Ready``
    conditions (their times kept, the claim's generation), its resources, revision and cluster, and
    the connection secret's name in the claim's namespace. Other conditions of the claim stay; the
    caller sets the claim's own ``Synced`` afterwards when binding itself failed."""
    composite_status = composite.get("status") or {}
    generation = int((claim.get("metadata") or {}).get("generation") or 0)
    copied = {
        c["type"]: {**c, "observedGeneration": generation}
        for c in composite_status.get("conditions") or []
        if c.get("type") in ("Synced", "Ready")
    }
    conditions = [copied.pop(c["type"], dict(c)) for c in (claim.get("status") or {}).get("conditions") or []]
    conditions.extend(copied.values())
    status: dict[str, Any] = {"conditions": conditions}
    for key in ("resources", "compositionRevision", "cluster"):
        if key in composite_status:
            status[key] = copy.deepcopy(composite_status[key])
    secret = composite_status.get("connectionSecret") or {}
    if secret.get("name"):
        status["connectionSecret"] = {"name": secret["name"]}
    return status


# ---- building the CRDs


def _required_str(spec: Mapping[str, Any], key: str, field: str, fix: str) -> str:
    value = spec.get(key)
    if not isinstance(value, str) or not value:
        raise DefinitionError(field, "is missing", fix)
    return value


def _names(spec: Mapping[str, Any], key: str, what: str) -> dict[str, Any]:
    names = spec.get(key)
    if not isinstance(names, Mapping):
        raise DefinitionError(f"spec.{key}", "is missing", f"set {what}")
    for sub in ("kind", "plural"):
        _required_str(names, sub, f"spec.{key}.{sub}", f"set {what}")
    plural = names["plural"]
    if plural != plural.lower():
        raise DefinitionError(
            f"spec.{key}.plural", f"is {plural!r}", f"write it in lower case: {plural.lower()}"
        )
    return dict(names)


def _versions(spec: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """The versions and the index of the one stored."""
    versions = spec.get("versions")
    if not isinstance(versions, list) or not versions:
        raise DefinitionError(
            "spec.versions",
            "is missing or empty",
            "add one version: {name: v1alpha1, served: true, referenceable: true, "
            "schema: {openAPIV3Schema: ...}}",
        )
    out = []
    for i, version in enumerate(versions):
        if not isinstance(version, Mapping) or not version.get("name"):
            raise DefinitionError(f"spec.versions[{i}].name", "is missing", "name the version, e.g. v1alpha1")
        out.append(dict(version))
    names = [v["name"] for v in out]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DefinitionError("spec.versions", f"lists {duplicates[0]!r} twice", "name each version once")
    referenceable = [i for i, v in enumerate(out) if v.get("referenceable")]
    if len(out) == 1:
        storage = 0
    elif len(referenceable) == 1:
        storage = referenceable[0]
    else:
        raise DefinitionError(
            "spec.versions[].referenceable",
            f"is true on {len(referenceable)} of {len(out)} versions",
            "mark exactly one version referenceable: true (the one stored and used by compositions)",
        )
    return out, storage


def _user_schema(version: Mapping[str, Any], i: int) -> dict[str, Any]:
    path = f"spec.versions[{i}].schema.openAPIV3Schema"
    held = version.get("schema") or {}
    user = held.get("openAPIV3Schema") if isinstance(held, Mapping) else None
    if user is None:
        raise DefinitionError(
            path, "is missing", "give the version a schema: {type: object, properties: {spec: ...}}"
        )
    problems = schema.structural_problems(user, path)
    if problems:
        first = problems[0]
        raise DefinitionError(first.field, f"{first.message} (the schema is not structural)", first.fix)
    if user.get("type") != "object":
        raise DefinitionError(
            f"{path}.type", f"is {user.get('type')!r}", "the root of the schema must be type: object"
        )
    properties = user.get("properties") or {}
    extra = sorted(set(properties) - {"spec", "status"})
    if extra:
        raise DefinitionError(
            f"{path}.properties.{extra[0]}",
            "is not allowed at the root",
            "declare fields under spec (inputs) or status (outputs); apiVersion, kind and metadata are given",
        )
    for part, machinery in (("spec", MACHINERY_SPEC_FIELDS), ("status", STATUS_FIELDS)):
        node = properties.get(part)
        if node is None:
            continue
        if node.get("type") != "object":
            raise DefinitionError(
                f"{path}.properties.{part}.type", f"is {node.get('type')!r}", f"{part} must be type: object"
            )
        for field in node.get("properties") or {}:
            if field in machinery:
                raise DefinitionError(
                    f"{path}.properties.{part}.properties.{field}",
                    f"collides with the provisioner's own {part}.{field}",
                    f"rename the field; {part}.{field} is set by fleetplane on every claim and composite",
                )
    return copy.deepcopy(dict(user))


def _merged(user: Mapping[str, Any], *, side: str, policy: str) -> dict[str, Any]:
    out = copy.deepcopy(dict(user))
    properties = out.setdefault("properties", {})
    spec = properties.setdefault("spec", {"type": "object"})
    spec.setdefault("properties", {}).update(_machinery_spec(side=side, policy=policy))
    status = properties.setdefault("status", {"type": "object"})
    status.setdefault("properties", {}).update(_machinery_status())
    return out


def _ref(*fields: str, required: tuple[str, ...] = ("name",)) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(required),
        "properties": {f: {"type": "string"} for f in fields},
    }


def _machinery_spec(*, side: str, policy: str) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "compositionRef": _ref("name"),
        "compositionSelector": {
            "type": "object",
            "required": ["matchLabels"],
            "properties": {"matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}},
        },
        "compositionRevisionRef": _ref("name"),
        "compositionUpdatePolicy": {"type": "string", "enum": list(api.UPDATE_POLICIES), "default": policy},
    }
    if side in (_COMPOSITE, _NAMESPACED_COMPOSITE):
        fields["deletionPolicy"] = {
            "type": "string",
            "enum": list(api.DELETION_POLICIES),
            "default": "Delete",
        }
    if side == _NAMESPACED_COMPOSITE:
        # The connection secret lands in the composite's own namespace: a team writes nowhere else.
        fields["writeConnectionSecretToRef"] = _ref("name")
    elif side == _COMPOSITE:
        fields["writeConnectionSecretToRef"] = _ref("name", "namespace", required=("name", "namespace"))
        fields["claimRef"] = _ref(
            "apiVersion", "kind", "name", "namespace", required=("apiVersion", "kind", "name", "namespace")
        )
    else:
        fields["writeConnectionSecretToRef"] = _ref("name")
        fields["resourceRef"] = _ref("apiVersion", "kind", "name", required=("apiVersion", "kind", "name"))
    return fields


def _machinery_status() -> dict[str, Any]:
    return {
        "conditions": api.conditions_schema(),
        "resources": {
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "target": {"type": "string"},
                    "kind": {"type": "string"},
                    "apiVersion": {"type": "string"},
                    # the object's own name and namespace, so a later revision can prune it
                    "objectName": {"type": "string"},
                    "namespace": {"type": "string"},
                    "ready": {"type": "boolean"},
                    "message": {"type": "string"},
                },
            },
        },
        "compositionRevision": {"type": "string"},
        "connectionSecret": _ref("name", "namespace"),
        # What the cluster provider reports (endpoint, ARNs, local folders): provider-specific.
        "cluster": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    }


def _columns() -> list[dict[str, Any]]:
    return [
        api.condition_column("SYNCED", "Synced"),
        api.condition_column("READY", "Ready"),
        # The revision in use (named after its Composition), which the claim's status carries too:
        # the claim's spec names no Composition unless its author chose one.
        {"name": "COMPOSITION-REVISION", "type": "string", "jsonPath": ".status.compositionRevision"},
        api.AGE_COLUMN,
    ]


def _owned_by(crd: dict[str, Any], xrd: Mapping[str, Any]) -> None:
    metadata = xrd.get("metadata") or {}
    crd["metadata"]["labels"] = {f"{api.GROUP}/definition": str(metadata.get("name", ""))}
    if metadata.get("uid"):
        # Deleting the definition deletes the CRDs it generated (and with them every claim).
        crd["metadata"]["ownerReferences"] = [
            {
                "apiVersion": api.API_VERSION,
                "kind": api.XRD_KIND,
                "name": metadata["name"],
                "uid": metadata["uid"],
                "controller": True,
            }
        ]
