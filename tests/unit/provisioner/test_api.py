"""The platform's CRDs: what the bootstrap installs on the management cluster.

Cases: three cluster-scoped CRDs in fleetplane.io/v1alpha1 with a status subresource and printer
columns; every schema is structural; unknown fields are kept only where users write free-form data;
a Composition's template must be exactly one of path or inline; revisions freeze their template.
"""

from __future__ import annotations

from typing import Any

import pytest

from provisioner import api, schema

CRDS = {crd["spec"]["names"]["kind"]: crd for crd in api.platform_crds()}


def preserved_paths(node: Any, path: str = "") -> list[str]:
    """Where x-kubernetes-preserve-unknown-fields is set in a schema."""
    found = [path] if isinstance(node, dict) and node.get("x-kubernetes-preserve-unknown-fields") else []
    if isinstance(node, dict):
        for name, sub in (node.get("properties") or {}).items():
            found += preserved_paths(sub, f"{path}.{name}")
        if isinstance(node.get("items"), dict):
            found += preserved_paths(node["items"], f"{path}[]")
    return found


def test_the_three_kinds_in_order() -> None:
    assert list(CRDS) == ["CompositeResourceDefinition", "Composition", "CompositionRevision"]


@pytest.mark.parametrize("kind", list(CRDS))
def test_crd_shape(kind: str) -> None:
    crd = CRDS[kind]
    assert crd["metadata"]["name"] == f"{crd['spec']['names']['plural']}.fleetplane.io"
    assert crd["spec"]["scope"] == "Cluster"
    (version,) = crd["spec"]["versions"]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}
    assert [c["name"] for c in version["additionalPrinterColumns"]][-1] == "AGE"
    assert schema.structural_problems(version["schema"]["openAPIV3Schema"], "openAPIV3Schema") == []


@pytest.mark.parametrize(
    ("kind", "want"),
    [
        ("CompositeResourceDefinition", [".spec.versions[].schema.openAPIV3Schema"]),
        ("Composition", [".spec.pipeline[].input", ".spec.defaults"]),
        ("CompositionRevision", [".spec.pipeline[].input", ".spec.defaults"]),
    ],
    ids=["xrd: the user's schema", "composition: step inputs, defaults", "revision: step inputs, defaults"],
)
def test_unknown_fields_kept_only_for_free_form_data(kind: str, want: list[str]) -> None:
    assert preserved_paths(CRDS[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]) == want


def test_printer_columns_read_conditions_and_refs() -> None:
    xrd_columns = CRDS["CompositeResourceDefinition"]["spec"]["versions"][0]["additionalPrinterColumns"]
    assert xrd_columns[0] == {
        "name": "ESTABLISHED",
        "type": "string",
        "jsonPath": ".status.conditions[?(@.type=='Established')].status",
    }
    comp_columns = CRDS["Composition"]["spec"]["versions"][0]["additionalPrinterColumns"]
    assert comp_columns[0]["jsonPath"] == ".spec.compositeTypeRef.kind"


def test_composition_template_is_path_or_inline() -> None:
    spec = CRDS["Composition"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert (
        spec["properties"]["template"]["x-kubernetes-validations"][0]["rule"]
        == "has(self.path) != has(self.inline)"
    )
    assert spec["required"] == ["compositeTypeRef"]
    # mode: Template takes the template alone; mode: Pipeline the pipeline alone
    assert "has(self.template) && !has(self.pipeline)" in spec["x-kubernetes-validations"][0]["rule"]


def test_revision_template_and_hash_are_immutable() -> None:
    spec = CRDS["CompositionRevision"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"][
        "spec"
    ]
    for field in ("template", "hash"):
        assert spec["properties"][field]["x-kubernetes-validations"][0]["rule"] == "self == oldSelf"
    assert "revision" in spec["required"]
