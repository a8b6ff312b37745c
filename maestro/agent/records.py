"""Applied records: what the agent applied for one bundle, kept in the cluster itself (pure).

Like OCM's AppliedManifestWork, one cluster-scoped `AppliedBundle`
(`appliedbundles.agent.maestro.fleetplane.io`) per bundle: the spec says which bundle and version
it is, the status lists the objects the agent created as its own (with their uids). A restart
reads them back (`Applier.load_records`), an update deletes what the new version dropped, a delete
removes exactly these objects. `bundle_applier` converts records with `to_object`/`from_object` and the
kube backend creates `CRD` at start.

Beyond the spec fields {resourceId, version, consumer} a record keeps the manifests' identities,
their manifestConfigs and the deleteOption: a delete event carries no payload, and after a restart
the server does not resend a bundle the agent already has, yet status feedback still needs the
rules and a delete still needs the option.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from maestro.agent.manifests import (
    ManifestConfig,
    ManifestMeta,
    ObjectRef,
    lenient_manifest_configs,
    marker_value,
)

JsonObject = dict[str, Any]

GROUP = "agent.maestro.fleetplane.io"
VERSION = "v1alpha1"
KIND = "AppliedBundle"
PLURAL = "appliedbundles"
API_VERSION = f"{GROUP}/{VERSION}"
CONSUMER_LABEL = f"{GROUP}/consumer"

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


@dataclass(frozen=True, slots=True)
class AppliedResource:
    """One object the agent created as its own; `uid` is empty until a write confirmed it."""

    group: str
    version: str
    resource: str
    namespace: str
    name: str
    uid: str = ""

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.group, self.version, self.resource, self.namespace, self.name)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.ref.key

    def describe(self) -> str:
        return self.ref.describe()

    def to_json(self) -> JsonObject:
        return {
            "group": self.group,
            "version": self.version,
            "resource": self.resource,
            "namespace": self.namespace,
            "name": self.name,
            "uid": self.uid,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> AppliedResource:
        return cls(
            group=str(raw.get("group") or ""),
            version=str(raw.get("version") or ""),
            resource=str(raw["resource"]),
            namespace=str(raw.get("namespace") or ""),
            name=str(raw["name"]),
            uid=str(raw.get("uid") or ""),
        )

    @classmethod
    def of(cls, ref: ObjectRef, uid: str = "") -> AppliedResource:
        return cls(ref.group, ref.version, ref.resource, ref.namespace, ref.name, uid)


# no slots: `configs` is cached on the instance
@dataclass(frozen=True)
class AppliedRecord:
    """The agent's durable memory of one bundle: its version and everything it owns in the cluster.

    `version` is 0 while the first apply of a bundle is under way: the objects it may create are
    listed before they exist, but the version is only claimed once the apply finished, so a crash
    in between makes the agent ask for the bundle again.
    """

    resource_id: str
    version: int
    consumer: str
    manifests: tuple[ManifestMeta, ...] = ()
    manifest_configs: tuple[JsonObject, ...] = ()
    delete_option: JsonObject | None = None
    applied_resources: tuple[AppliedResource, ...] = ()

    @functools.cached_property
    def configs(self) -> tuple[ManifestConfig, ...]:
        """``manifest_configs`` parsed once: every status refresh needs them, and parsing them
        again on each was most of a refresh's cost."""
        return lenient_manifest_configs(self.manifest_configs)


def record_name(resource_id: str) -> str:
    """The record's object name: the resource id when it is a DNS subdomain (UUIDs are)."""
    lowered = resource_id.lower()
    if lowered == resource_id and _DNS_SUBDOMAIN.match(resource_id):
        return resource_id
    return "rb-" + hashlib.sha256(resource_id.encode()).hexdigest()[:40]


def to_object(record: AppliedRecord) -> JsonObject:
    spec: JsonObject = {
        "resourceId": record.resource_id,
        "version": record.version,
        "consumer": record.consumer,
        "manifests": [m.to_json() for m in record.manifests],
        "manifestConfigs": list(record.manifest_configs),
    }
    if record.delete_option is not None:
        spec["deleteOption"] = record.delete_option
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": record_name(record.resource_id),
            "labels": {CONSUMER_LABEL: marker_value(record.consumer)},
        },
        "spec": spec,
        "status": {"appliedResources": [r.to_json() for r in record.applied_resources]},
    }


def from_object(obj: Mapping[str, Any]) -> AppliedRecord:
    """Read a record back; raises KeyError/ValueError/TypeError when it is not one of ours."""
    spec = obj["spec"]
    status = obj.get("status") or {}
    return AppliedRecord(
        resource_id=str(spec["resourceId"]),
        version=int(spec.get("version") or 0),
        consumer=str(spec.get("consumer") or ""),
        manifests=tuple(ManifestMeta.from_json(m) for m in spec.get("manifests") or ()),
        manifest_configs=tuple(dict(c) for c in spec.get("manifestConfigs") or ()),
        delete_option=dict(spec["deleteOption"]) if spec.get("deleteOption") else None,
        applied_resources=tuple(AppliedResource.from_json(r) for r in status.get("appliedResources") or ()),
    )


def _string(description: str) -> JsonObject:
    return {"type": "string", "description": description}


_REF_PROPERTIES: JsonObject = {
    "group": _string("API group; empty for the core group"),
    "version": _string("API version the object was written with"),
    "resource": _string("plural resource name"),
    "namespace": _string("empty for cluster-scoped objects"),
    "name": _string("object name"),
}

CRD: JsonObject = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Cluster",
        "names": {"plural": PLURAL, "singular": "appliedbundle", "kind": KIND, "listKind": f"{KIND}List"},
        "versions": [
            {
                "name": VERSION,
                "served": True,
                "storage": True,
                "additionalPrinterColumns": [
                    {"name": "Resource", "type": "string", "jsonPath": ".spec.resourceId"},
                    {"name": "Version", "type": "integer", "jsonPath": ".spec.version"},
                    {"name": "Consumer", "type": "string", "jsonPath": ".spec.consumer"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "description": "What a Maestro agent applied for one resource bundle.",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["resourceId", "version", "consumer"],
                                "properties": {
                                    "resourceId": _string("the bundle's Maestro resource id"),
                                    "version": {"type": "integer", "description": "spec version applied"},
                                    "consumer": _string("the Maestro consumer (cluster) name"),
                                    "manifests": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "properties": {
                                                **_REF_PROPERTIES,
                                                "ordinal": {"type": "integer"},
                                                "kind": _string("object kind"),
                                            },
                                        },
                                    },
                                    "manifestConfigs": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "x-kubernetes-preserve-unknown-fields": True,
                                        },
                                    },
                                    "deleteOption": {
                                        "type": "object",
                                        "x-kubernetes-preserve-unknown-fields": True,
                                    },
                                },
                            },
                            "status": {
                                "type": "object",
                                "properties": {
                                    "appliedResources": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "properties": {**_REF_PROPERTIES, "uid": _string("object uid")},
                                        },
                                    }
                                },
                            },
                        },
                    }
                },
            }
        ],
    },
}
