"""The platform's own API: the group, the well-known labels and the three CRDs the platform installs.

``CompositeResourceDefinition``, ``Composition`` and ``CompositionRevision`` are cluster-scoped, as
in Crossplane. The bootstrap (and the tests) install :func:`platform_crds`; the operator serves the
kinds a definition generates (see :mod:`provisioner.xrd`). Every schema is structural: unknown
fields are kept only where users write free-form data (a definition's own schema, defaults).
"""

from __future__ import annotations

from typing import Any

GROUP = "fleetplane.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

XRD_KIND = "CompositeResourceDefinition"
COMPOSITION_KIND = "Composition"
REVISION_KIND = "CompositionRevision"
CLUSTER_CONFIG_KIND = "ClusterConfig"

# Labels the provisioner sets; selectors and `kubectl get -l` rely on them.
LABEL_CLAIM_NAME = f"{GROUP}/claim-name"
LABEL_CLAIM_NAMESPACE = f"{GROUP}/claim-namespace"
LABEL_COMPOSITION_NAME = f"{GROUP}/composition-name"
LABEL_COMPOSITE_NAME = f"{GROUP}/composite-name"

UPDATE_POLICIES = ("Automatic", "Manual")
# A definition's scope, as Crossplane v2 names them: a namespaced composite a team applies itself,
# or a cluster-scoped composite a team asks for through a claim.
NAMESPACED = "Namespaced"
LEGACY_CLUSTER = "LegacyCluster"
SCOPES = (NAMESPACED, LEGACY_CLUSTER)
DELETION_POLICIES = ("Delete", "Orphan")
DEFAULT_REVISION_HISTORY_LIMIT = 10

AGE_COLUMN: dict[str, Any] = {"name": "AGE", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def condition_column(name: str, condition: str) -> dict[str, str]:
    return {
        "name": name,
        "type": "string",
        "jsonPath": f".status.conditions[?(@.type=='{condition}')].status",
    }


def conditions_schema() -> dict[str, Any]:
    """``status.conditions`` as Kubernetes' ``metav1.Condition``, merged by ``type`` under server-side
    apply."""
    return {
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": {
            "type": "object",
            "required": ["type", "status"],
            "properties": {
                "type": {"type": "string"},
                "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
                "reason": {"type": "string"},
                "message": {"type": "string"},
                "lastTransitionTime": {"type": "string", "format": "date-time"},
                "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
            },
        },
    }


def type_ref_schema() -> dict[str, Any]:
    """``compositeTypeRef``: which composite kind a Composition serves."""
    return {
        "type": "object",
        "required": ["apiVersion", "kind"],
        "properties": {
            "apiVersion": {"type": "string", "minLength": 1},
            "kind": {"type": "string", "minLength": 1},
        },
    }


def crd(
    *,
    group: str,
    kind: str,
    plural: str,
    scope: str,
    versions: list[dict[str, Any]],
    short_names: list[str] | None = None,
    categories: list[str] | None = None,
) -> dict[str, Any]:
    """An ``apiextensions.k8s.io/v1`` CRD around already-built versions."""
    names: dict[str, Any] = {
        "kind": kind,
        "plural": plural,
        "singular": kind.lower(),
        "listKind": f"{kind}List",
    }
    if short_names:
        names["shortNames"] = short_names
    if categories:
        names["categories"] = categories
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {"group": group, "names": names, "scope": scope, "versions": versions},
    }


def crd_version(
    name: str,
    schema: dict[str, Any],
    columns: list[dict[str, Any]],
    *,
    storage: bool = True,
    served: bool = True,
) -> dict[str, Any]:
    return {
        "name": name,
        "served": served,
        "storage": storage,
        "schema": {"openAPIV3Schema": schema},
        "subresources": {"status": {}},
        "additionalPrinterColumns": columns,
    }


def _object(spec: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": ["spec"], "properties": {"spec": spec, "status": status}}


def _names_schema() -> dict[str, Any]:
    lower_dns = "^[a-z]([-a-z0-9]*[a-z0-9])?$"
    return {
        "type": "object",
        "required": ["kind", "plural"],
        "properties": {
            "kind": {"type": "string", "pattern": "^[A-Z][A-Za-z0-9]*$"},
            "plural": {"type": "string", "pattern": lower_dns},
            "singular": {"type": "string", "pattern": lower_dns},
            "shortNames": {"type": "array", "items": {"type": "string"}},
            "categories": {"type": "array", "items": {"type": "string"}},
        },
    }


def xrd_crd() -> dict[str, Any]:
    spec = {
        "type": "object",
        "required": ["group", "names", "versions"],
        "x-kubernetes-validations": [
            {
                "rule": "has(self.scope) && self.scope == 'Namespaced' "
                "? !has(self.claimNames) : has(self.claimNames)",
                "message": "a Namespaced definition has no claimNames (teams apply the composite itself); "
                "a LegacyCluster one needs claimNames",
            }
        ],
        "properties": {
            "group": {"type": "string", "minLength": 1},
            "scope": {"type": "string", "enum": list(SCOPES), "default": LEGACY_CLUSTER},
            "names": _names_schema(),
            "claimNames": _names_schema(),
            "versions": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["name", "schema"],
                    "properties": {
                        "name": {"type": "string", "pattern": "^v[0-9]+((alpha|beta)[0-9]+)?$"},
                        "served": {"type": "boolean", "default": True},
                        "referenceable": {"type": "boolean"},
                        "schema": {
                            "type": "object",
                            "required": ["openAPIV3Schema"],
                            "properties": {
                                # The user's own schema: checked by the provisioner, which names the
                                # offending field in the definition's Established condition.
                                "openAPIV3Schema": {
                                    "type": "object",
                                    "x-kubernetes-preserve-unknown-fields": True,
                                }
                            },
                        },
                    },
                },
            },
            "defaultCompositionRef": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string"}},
            },
            "defaultCompositionUpdatePolicy": {
                "type": "string",
                "enum": list(UPDATE_POLICIES),
                "default": "Automatic",
            },
        },
    }
    status = {"type": "object", "properties": {"conditions": conditions_schema()}}
    columns = [
        condition_column("ESTABLISHED", "Established"),
        condition_column("OFFERED", "Offered"),
        AGE_COLUMN,
    ]
    return crd(
        group=GROUP,
        kind=XRD_KIND,
        plural="compositeresourcedefinitions",
        scope="Cluster",
        versions=[crd_version(VERSION, _object(spec, status), columns)],
        short_names=["xrd", "xrds"],
    )


def pipeline_schema(*, frozen: bool) -> dict[str, Any]:
    """``spec.pipeline``: the steps of a ``mode: Pipeline`` Composition (``provisioner.pipeline``)."""
    step: dict[str, Any] = {
        "type": "object",
        "required": ["step", "functionRef"],
        "properties": {
            "step": {"type": "string", "minLength": 1, "maxLength": 63},
            "functionRef": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string", "minLength": 1}},
            },
            # The function's own input, checked by the function.
            "input": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    }
    out: dict[str, Any] = {"type": "array", "minItems": 1, "items": step}
    if frozen:
        out["x-kubernetes-validations"] = [
            {"rule": "self == oldSelf", "message": "a revision's pipeline is immutable"}
        ]
    return out


MODES = ("Template", "Pipeline")


def composition_crd() -> dict[str, Any]:
    spec = {
        "type": "object",
        "required": ["compositeTypeRef"],
        "x-kubernetes-validations": [
            {
                "rule": "has(self.mode) && self.mode == 'Pipeline' "
                "? has(self.pipeline) && !has(self.template) : has(self.template) && !has(self.pipeline)",
                "message": "mode: Pipeline takes spec.pipeline (the template is a step of it); "
                "mode: Template takes spec.template alone",
            }
        ],
        "properties": {
            "compositeTypeRef": type_ref_schema(),
            "mode": {"type": "string", "enum": list(MODES), "default": "Template"},
            "pipeline": pipeline_schema(frozen=False),
            "template": {
                "type": "object",
                "properties": {
                    "path": {
                        "type": "string",
                        "minLength": 1,
                        "description": "A Jinja template file, relative to compositions/.",
                        "x-kubernetes-validations": [
                            {
                                "rule": "!self.startsWith('/') && !self.contains('..')",
                                "message": "template.path is relative to compositions/ and may not leave it",
                            }
                        ],
                    },
                    "inline": {"type": "string", "minLength": 1, "description": "A Jinja template, inline."},
                },
                "x-kubernetes-validations": [
                    {
                        "rule": "has(self.path) != has(self.inline)",
                        "message": "set exactly one of template.path or template.inline",
                    }
                ],
            },
            # Parameters' defaults, merged under each composite's spec.parameters: free-form by design.
            "defaults": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "revisionHistoryLimit": {
                "type": "integer",
                "minimum": 1,
                "default": DEFAULT_REVISION_HISTORY_LIMIT,
            },
        },
    }
    status = {
        "type": "object",
        "properties": {"conditions": conditions_schema(), "latestRevision": {"type": "string"}},
    }
    columns = [
        {"name": "XR-KIND", "type": "string", "jsonPath": ".spec.compositeTypeRef.kind"},
        {"name": "XR-APIVERSION", "type": "string", "jsonPath": ".spec.compositeTypeRef.apiVersion"},
        {"name": "LATEST", "type": "string", "jsonPath": ".status.latestRevision"},
        AGE_COLUMN,
    ]
    return crd(
        group=GROUP,
        kind=COMPOSITION_KIND,
        plural="compositions",
        scope="Cluster",
        versions=[crd_version(VERSION, _object(spec, status), columns)],
        short_names=["comp"],
    )


def revision_crd() -> dict[str, Any]:
    spec = {
        "type": "object",
        "required": ["revision", "compositionName", "compositeTypeRef", "hash"],
        "x-kubernetes-validations": [
            {
                "rule": "has(self.template) != has(self.pipeline)",
                "message": "a revision holds a template or a pipeline",
            }
        ],
        "properties": {
            "revision": {"type": "integer", "format": "int64", "minimum": 1},
            "compositionName": {"type": "string", "minLength": 1},
            "compositeTypeRef": type_ref_schema(),
            "mode": {"type": "string", "enum": list(MODES)},
            # The pipeline as it was when the revision was cut, each template step's text inline.
            "pipeline": pipeline_schema(frozen=True),
            "template": {
                "type": "object",
                "required": ["inline"],
                # A frozen copy: changing the composition cuts a new revision instead. Only the
                # revision number may change (a composition rolled back to an older content).
                "x-kubernetes-validations": [
                    {"rule": "self == oldSelf", "message": "a revision's template is immutable"}
                ],
                "properties": {
                    # The template text as it was when the revision was cut: editing the file later
                    # does not change what composites on this revision render.
                    "inline": {"type": "string"},
                    # Where it came from, for error messages: compositions/<path> or Composition/<name>.
                    "source": {"type": "string"},
                },
            },
            "defaults": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "hash": {
                "type": "string",
                "minLength": 1,
                "x-kubernetes-validations": [
                    {"rule": "self == oldSelf", "message": "a revision's hash is immutable"}
                ],
            },
        },
    }
    status = {"type": "object", "properties": {"conditions": conditions_schema()}}
    columns: list[dict[str, Any]] = [
        {"name": "REVISION", "type": "integer", "jsonPath": ".spec.revision"},
        {"name": "COMPOSITION", "type": "string", "jsonPath": ".spec.compositionName"},
        {"name": "XR-KIND", "type": "string", "jsonPath": ".spec.compositeTypeRef.kind"},
        {"name": "HASH", "type": "string", "jsonPath": ".spec.hash", "priority": 1},
        AGE_COLUMN,
    ]
    return crd(
        group=GROUP,
        kind=REVISION_KIND,
        plural="compositionrevisions",
        scope="Cluster",
        versions=[crd_version(VERSION, _object(spec, status), columns)],
        short_names=["comprev"],
    )


def platform_crds() -> list[dict[str, Any]]:
    """The CRDs the platform installs on the management cluster, definitions first."""
    return [xrd_crd(), composition_crd(), revision_crd()]
