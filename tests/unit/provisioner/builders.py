"""What the provisioner's unit tests start from: the shipped worker-cluster files, claims, platform values."""

from __future__ import annotations

import copy
import pathlib
from typing import Any

from provisioner import catalog, render, schema, xrd

HERE = pathlib.Path(__file__).parent
WORKER = catalog.COMPOSITIONS_DIR / "worker-cluster"
ARGOCD_INSTALL = HERE / "argocd-install.yaml"
TEMPLATE_SOURCE = "compositions/worker-cluster/template.yaml.j2"


def definition() -> dict[str, Any]:
    return catalog.load_documents(WORKER / "definition.yaml")[0]


def composition() -> dict[str, Any]:
    return catalog.load_documents(WORKER / "composition.yaml")[0]


def template() -> str:
    return catalog.template_text(composition())


def claim(name: str = "team-a", namespace: str = "apps", **parameters: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"labels": {"env": "dev"}, "apps": {"repoURL": "file:///srv/apps"}}
    params.update(parameters)
    return {
        "apiVersion": "platform.fleetplane.io/v1alpha1",
        "kind": "ClusterClaim",
        "metadata": {"name": name, "namespace": namespace, "generation": 2},
        "spec": {"parameters": params},
    }


def defaulted(obj: dict[str, Any]) -> dict[str, Any]:
    """The claim as the API server stores it: with its schema's defaults."""
    crd = xrd.generated_crds(definition())[1]
    spec_schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return {**obj, "spec": schema.apply_defaults(obj["spec"], spec_schema)}


def platform(install: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return render.platform_values(
        hub_name="hub",
        hub_server="https://127.0.0.1:6443",
        inventory_namespace="argocd",
        maestro_grpc="127.0.0.1:8090",
        kafka="127.0.0.1:9092",
        topic_prefix="fleetplane.maestro",
        argocd_version="v3.6.1",
        argocd_install=install if install is not None else catalog.load_documents(ARGOCD_INSTALL),
    )


def compose(install: list[dict[str, Any]], **argocd: Any) -> list[render.ComposedResource]:
    """What the default claim renders to with Argo CD's ``install`` objects; ``argocd`` overrides
    the Composition's Argo CD defaults."""
    claim_obj = defaulted(claim())
    composite = xrd.composite_from_claim(claim_obj, definition())
    defaults = composition()["spec"]["defaults"]
    defaults = {**defaults, "argocd": {**defaults["argocd"], **argocd}}
    values = render.composite_values(composite, claim_obj, defaults, platform(install))
    return render.render(template(), source=TEMPLATE_SOURCE, values=values)


def workload(resources: list[render.ComposedResource], kind: str, name: str) -> dict[str, Any]:
    """The composed object of that kind and name."""
    return next(
        r.object for r in resources if r.object.get("kind") == kind and r.object["metadata"]["name"] == name
    )


def xrd_with(**spec: Any) -> dict[str, Any]:
    """A small definition, with ``spec`` keys replaced (a value of ``None`` removes the key)."""
    base: dict[str, Any] = {
        "apiVersion": "fleetplane.io/v1alpha1",
        "kind": "CompositeResourceDefinition",
        "metadata": {"name": "databases.example.org", "uid": "xrd-uid"},
        "spec": {
            "group": "example.org",
            "names": {"kind": "XDatabase", "plural": "xdatabases"},
            "claimNames": {"kind": "Database", "plural": "databases"},
            "versions": [
                {
                    "name": "v1",
                    "referenceable": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "parameters": {
                                            "type": "object",
                                            "properties": {"size": {"type": "integer"}},
                                        }
                                    },
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    out = copy.deepcopy(base)
    for key, value in spec.items():
        if value is None:
            out["spec"].pop(key, None)
        else:
            out["spec"][key] = value
    return out


def user_schema(xrd: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = xrd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def namespaced_definition() -> dict[str, Any]:
    """The worker-cluster definition as Crossplane v2 would write it: a namespaced ``TeamCluster``
    that teams apply themselves, no claim."""
    out = copy.deepcopy(definition())
    out["metadata"] = {"name": "teamclusters.platform.fleetplane.io"}
    spec = out["spec"]
    del spec["claimNames"]
    spec["scope"] = "Namespaced"
    spec["names"] = {"kind": "TeamCluster", "plural": "teamclusters", "shortNames": ["tc"]}
    spec["defaultCompositionRef"] = {"name": "team-cluster"}
    return out


def pipeline_composition(*steps: dict[str, Any]) -> dict[str, Any]:
    """The worker-cluster Composition for ``TeamCluster`` as a pipeline: its template, then ``steps``."""
    out = copy.deepcopy(composition())
    out["metadata"] = {"name": "team-cluster"}
    spec = out["spec"]
    del spec["template"]
    spec["compositeTypeRef"] = {"apiVersion": "platform.fleetplane.io/v1alpha1", "kind": "TeamCluster"}
    spec["mode"] = "Pipeline"
    spec["pipeline"] = [
        {
            "step": "render",
            "functionRef": {"name": "fleetplane-template"},
            "input": {"template": {"path": "worker-cluster/template.yaml.j2"}},
        },
        *steps,
    ]
    return out


def team_cluster(name: str = "dev", namespace: str = "team-b", **parameters: Any) -> dict[str, Any]:
    """A namespaced composite, as a team applies it."""
    params: dict[str, Any] = {"labels": {"env": "dev"}, "apps": {"repoURL": "file:///srv/apps"}}
    params.update(parameters)
    return {
        "apiVersion": "platform.fleetplane.io/v1alpha1",
        "kind": "TeamCluster",
        "metadata": {"name": name, "namespace": namespace, "generation": 1},
        "spec": {"parameters": params},
    }


def defaulted_composite(obj: dict[str, Any]) -> dict[str, Any]:
    """A namespaced composite as the API server stores it: with its schema's defaults."""
    crd = xrd.generated_crds(namespaced_definition())[0]
    spec_schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return {**obj, "spec": schema.apply_defaults(obj["spec"], spec_schema)}
