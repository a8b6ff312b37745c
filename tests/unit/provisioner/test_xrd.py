"""A definition's generated CRDs, and the claim <-> composite mapping.

Cases: the shipped WorkerCluster/ClusterClaim definition generates a cluster-scoped composite CRD and
a namespaced claim CRD, structural, with the machinery fields (claim-only and composite-only ones on
their side), the update policy default from the definition, status fields and printer columns;
broken definitions are refused naming the field (missing names, same kinds, no versions, two
referenceable versions, colliding fields, non-structural schemas, extra root fields); the
composite's name is deterministic and short; a claim maps to its composite (labels, spec without
claim-only fields, claimRef, connection secret in the claim's namespace) and the composite's status
back to the claim.
"""

from __future__ import annotations

from typing import Any

import pytest

from provisioner import schema, xrd

from . import builders


def spec_of(crd: dict[str, Any]) -> dict[str, Any]:
    props: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    return props


def test_worker_cluster_definition_generates_composite_then_claim() -> None:
    composite, claim = xrd.generated_crds(builders.definition())
    assert (
        composite["metadata"]["name"],
        composite["spec"]["scope"],
        composite["spec"]["names"]["kind"],
    ) == (
        "workerclusters.platform.fleetplane.io",
        "Cluster",
        "WorkerCluster",
    )
    assert (claim["metadata"]["name"], claim["spec"]["scope"], claim["spec"]["names"]["kind"]) == (
        "clusterclaims.platform.fleetplane.io",
        "Namespaced",
        "ClusterClaim",
    )
    for crd in (composite, claim):
        version = crd["spec"]["versions"][0]
        assert version["subresources"] == {"status": {}}
        assert version["storage"] and version["served"]
        assert schema.structural_problems(version["schema"]["openAPIV3Schema"], "root") == []
        assert [c["name"] for c in version["additionalPrinterColumns"]] == [
            "SYNCED",
            "READY",
            "COMPOSITION-REVISION",
            "AGE",
        ]
        assert (
            version["additionalPrinterColumns"][1]["jsonPath"]
            == ".status.conditions[?(@.type=='Ready')].status"
        )


@pytest.mark.parametrize(
    ("which", "present", "absent"),
    [
        (
            0,
            [
                "parameters",
                "compositionRef",
                "compositionSelector",
                "compositionRevisionRef",
                "compositionUpdatePolicy",
                "deletionPolicy",
                "writeConnectionSecretToRef",
                "claimRef",
            ],
            ["resourceRef"],
        ),
        (
            1,
            [
                "parameters",
                "compositionRef",
                "compositionSelector",
                "compositionRevisionRef",
                "compositionUpdatePolicy",
                "writeConnectionSecretToRef",
                "resourceRef",
            ],
            ["deletionPolicy", "claimRef"],
        ),
    ],
    ids=["composite", "claim"],
)
def test_machinery_spec_fields(which: int, present: list[str], absent: list[str]) -> None:
    spec = spec_of(xrd.generated_crds(builders.definition())[which])["spec"]["properties"]
    assert set(present) <= set(spec)
    assert not set(absent) & set(spec)


def test_machinery_field_shapes() -> None:
    composite, claim = (spec_of(c) for c in xrd.generated_crds(builders.definition()))
    spec = composite["spec"]["properties"]
    assert spec["deletionPolicy"] == {"type": "string", "enum": ["Delete", "Orphan"], "default": "Delete"}
    assert spec["compositionUpdatePolicy"]["enum"] == ["Automatic", "Manual"]
    assert set(spec["writeConnectionSecretToRef"]["properties"]) == {"name", "namespace"}
    assert set(claim["spec"]["properties"]["writeConnectionSecretToRef"]["properties"]) == {"name"}
    assert set(spec["claimRef"]["properties"]) == {"apiVersion", "kind", "name", "namespace"}
    assert set(claim["spec"]["properties"]["resourceRef"]["properties"]) == {"apiVersion", "kind", "name"}
    status = composite["status"]["properties"]
    assert set(status) == {"conditions", "resources", "compositionRevision", "connectionSecret", "cluster"}
    assert status["cluster"] == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    assert set(status["resources"]["items"]["properties"]) == {
        "name",
        "target",
        "kind",
        "apiVersion",
        "objectName",
        "namespace",
        "ready",
        "message",
    }
    # The user's own fields survive the merge.
    assert composite["spec"]["required"] == ["parameters"]
    assert "apps" in composite["spec"]["properties"]["parameters"]["properties"]


def test_update_policy_default_comes_from_the_definition() -> None:
    composite, claim = xrd.generated_crds(builders.xrd_with(defaultCompositionUpdatePolicy="Manual"))
    for crd in (composite, claim):
        assert spec_of(crd)["spec"]["properties"]["compositionUpdatePolicy"]["default"] == "Manual"


def test_generated_crds_are_owned_by_the_definition() -> None:
    for crd in xrd.generated_crds(builders.xrd_with()):
        assert crd["metadata"]["ownerReferences"][0]["uid"] == "xrd-uid"
        assert crd["metadata"]["labels"] == {"fleetplane.io/definition": "databases.example.org"}


SPEC = "spec.versions[0].schema.openAPIV3Schema"


def with_spec_field(name: str, field: dict[str, Any], part: str = "spec") -> dict[str, Any]:
    definition = builders.xrd_with()
    root = builders.user_schema(definition)["properties"]
    root.setdefault(part, {"type": "object", "properties": {}})["properties"][name] = field
    return definition


def two_versions(referenceable: bool) -> list[dict[str, Any]]:
    version = builders.xrd_with()["spec"]["versions"][0]
    return [
        {**version, "name": "v1", "referenceable": referenceable},
        {**version, "name": "v2", "referenceable": referenceable},
    ]


BROKEN = [
    ("no group", builders.xrd_with(group=None), "spec.group"),
    ("no names", builders.xrd_with(names=None), "spec.names"),
    ("no claim names", builders.xrd_with(claimNames=None), "spec.claimNames"),
    ("claim kind missing", builders.xrd_with(claimNames={"plural": "databases"}), "spec.claimNames.kind"),
    (
        "claim kind equals composite kind",
        builders.xrd_with(claimNames={"kind": "XDatabase", "plural": "databases"}),
        "spec.claimNames.kind",
    ),
    ("no versions", builders.xrd_with(versions=[]), "spec.versions"),
    (
        "two referenceable versions",
        builders.xrd_with(versions=two_versions(True)),
        "spec.versions[].referenceable",
    ),
    (
        "none referenceable of two",
        builders.xrd_with(versions=two_versions(False)),
        "spec.versions[].referenceable",
    ),
    (
        "collides with compositionRef",
        with_spec_field("compositionRef", {"type": "string"}),
        f"{SPEC}.properties.spec.properties.compositionRef",
    ),
    (
        "collides with claim-only resourceRef",
        with_spec_field("resourceRef", {"type": "object"}),
        f"{SPEC}.properties.spec.properties.resourceRef",
    ),
    (
        "collides with status.conditions",
        with_spec_field("conditions", {"type": "array", "items": {"type": "string"}}, part="status"),
        f"{SPEC}.properties.status.properties.conditions",
    ),
    (
        "non-structural: no type",
        with_spec_field("size", {"description": "how big"}),
        f"{SPEC}.properties.spec.properties.size.type",
    ),
    (
        "non-structural: array without items",
        with_spec_field("zones", {"type": "array"}),
        f"{SPEC}.properties.spec.properties.zones.items",
    ),
    (
        "non-structural: $ref",
        with_spec_field("ref", {"type": "object", "$ref": "#/definitions/x"}),
        f"{SPEC}.properties.spec.properties.ref.$ref",
    ),
    (
        "root field other than spec/status",
        with_spec_field("data", {"type": "object"}, part="data"),
        f"{SPEC}.properties.data",
    ),
]


@pytest.mark.parametrize(("definition", "field"), [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN])
def test_broken_definitions_are_refused_naming_the_field(definition: dict[str, Any], field: str) -> None:
    with pytest.raises(xrd.DefinitionError) as caught:
        xrd.generated_crds(definition)
    assert caught.value.field == field
    assert caught.value.fix
    assert str(caught.value).startswith(f"{field}: ")


def test_collision_message_names_the_machinery_field() -> None:
    with pytest.raises(
        xrd.DefinitionError, match=r"collides with the provisioner's own spec\.compositionRef — rename"
    ):
        xrd.generated_crds(with_spec_field("compositionRef", {"type": "string"}))


@pytest.mark.parametrize(
    ("name", "namespace"),
    [("team-a", "apps"), ("team-a", "other"), ("x" * 253, "apps")],
    ids=["plain", "same name in another namespace", "very long claim name"],
)
def test_composite_name_is_deterministic_and_short(name: str, namespace: str) -> None:
    claim = builders.claim(name, namespace)
    got = xrd.claim_to_composite_name(claim)
    assert got == xrd.claim_to_composite_name(builders.claim(name, namespace))
    assert len(got) <= 63
    assert got.startswith(name[:20]) and len(got.rsplit("-", 1)[1]) == 5


def test_composite_names_differ_across_namespaces() -> None:
    names = {xrd.claim_to_composite_name(builders.claim("team-a", ns)) for ns in ("a", "b")}
    assert len(names) == 2


def test_composite_from_claim() -> None:
    claim = builders.claim()
    claim["metadata"]["labels"] = {"team": "a"}
    claim["spec"].update(
        writeConnectionSecretToRef={"name": "team-a-kubeconfig"},
        resourceRef={"apiVersion": "x", "kind": "y", "name": "z"},
        compositionUpdatePolicy="Manual",
        compositionRevisionRef={},
    )
    composite = xrd.composite_from_claim(claim, builders.definition())
    name = xrd.claim_to_composite_name(claim)
    assert composite == {
        "apiVersion": "platform.fleetplane.io/v1alpha1",
        "kind": "WorkerCluster",
        "metadata": {
            "name": name,
            "labels": {
                "team": "a",
                "fleetplane.io/claim-name": "team-a",
                "fleetplane.io/claim-namespace": "apps",
            },
        },
        "spec": {
            "parameters": claim["spec"]["parameters"],
            "compositionUpdatePolicy": "Manual",
            "claimRef": {
                "apiVersion": "platform.fleetplane.io/v1alpha1",
                "kind": "ClusterClaim",
                "name": "team-a",
                "namespace": "apps",
            },
            "writeConnectionSecretToRef": {"name": "team-a-kubeconfig", "namespace": "apps"},
        },
    }
    assert xrd.resource_ref({**composite}) == {
        "apiVersion": "platform.fleetplane.io/v1alpha1",
        "kind": "WorkerCluster",
        "name": name,
    }


def test_claim_status_from_composite() -> None:
    claim = builders.claim()
    claim["status"] = {
        "conditions": [
            {"type": "Ready", "status": "False", "reason": "Creating", "lastTransitionTime": "t0"},
            {"type": "Bound", "status": "True", "reason": "Bound", "lastTransitionTime": "t0"},
        ]
    }
    composite = {
        "status": {
            "conditions": [
                {
                    "type": "Synced",
                    "status": "True",
                    "reason": "ReconcileSuccess",
                    "lastTransitionTime": "t1",
                    "observedGeneration": 7,
                },
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Available",
                    "lastTransitionTime": "t2",
                    "observedGeneration": 7,
                },
            ],
            "resources": [{"name": "cluster", "ready": True}],
            "compositionRevision": "worker-cluster-abc1234",
            "connectionSecret": {"name": "team-a-kubeconfig", "namespace": "apps"},
            "cluster": {"endpoint": "https://127.0.0.1:1234"},
        }
    }
    status = xrd.claim_status(claim, composite)
    assert status["conditions"] == [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Available",
            "lastTransitionTime": "t2",
            "observedGeneration": 2,
        },
        {"type": "Bound", "status": "True", "reason": "Bound", "lastTransitionTime": "t0"},
        {
            "type": "Synced",
            "status": "True",
            "reason": "ReconcileSuccess",
            "lastTransitionTime": "t1",
            "observedGeneration": 2,
        },
    ]
    assert status["connectionSecret"] == {"name": "team-a-kubeconfig"}
    assert status["compositionRevision"] == "worker-cluster-abc1234"
    assert status["resources"] == [{"name": "cluster", "ready": True}]
    assert status["cluster"] == {"endpoint": "https://127.0.0.1:1234"}


@pytest.mark.parametrize(
    ("api_version", "kind", "found"),
    [
        ("platform.fleetplane.io/v1alpha1", "ClusterClaim", True),
        ("platform.fleetplane.io/v1alpha1", "WorkerCluster", True),
        ("other.example.org/v1", "ClusterClaim", False),
        ("platform.fleetplane.io/v1alpha1", "Database", False),
    ],
    ids=["claim kind", "composite kind", "other group", "other kind"],
)
def test_find_definition(api_version: str, kind: str, found: bool) -> None:
    assert (
        xrd.find_definition([builders.xrd_with(), builders.definition()], api_version, kind) is not None
    ) is found
