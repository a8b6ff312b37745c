"""Namespaced composites (Crossplane v2's model): one namespaced CRD, no claim kind, a cluster name
unique across namespaces, the team's labels, and `fleetplane render` offline."""

from __future__ import annotations

import pathlib

import pytest
import yaml
from typer.testing import CliRunner

from fleetplane.cli import app
from provisioner import render, xrd
from tests.unit.provisioner import builders

runner = CliRunner()


def test_a_namespaced_definition_serves_one_namespaced_composite_kind() -> None:
    crds = xrd.generated_crds(builders.namespaced_definition())
    assert len(crds) == 1
    crd = crds[0]
    assert crd["metadata"]["name"] == "teamclusters.platform.fleetplane.io"
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"]["categories"] == ["composite"]
    machinery = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert "claimRef" not in machinery
    # the connection secret goes to the composite's own namespace: a team names no other
    assert machinery["writeConnectionSecretToRef"]["properties"] == {"name": {"type": "string"}}
    assert machinery["deletionPolicy"]["default"] == "Delete"
    assert "parameters" in machinery


def test_the_legacy_scope_keeps_the_claim_kind() -> None:
    definition = builders.definition()
    assert xrd.scope(definition) == "LegacyCluster"
    composite, claim = xrd.generated_crds(definition)
    assert (composite["spec"]["scope"], claim["spec"]["scope"]) == ("Cluster", "Namespaced")


@pytest.mark.parametrize(
    ("change", "field", "fix"),
    [
        ({"claimNames": {"kind": "X", "plural": "xs"}}, "spec.claimNames", "remove it"),
        ({"scope": "Cluster"}, "spec.scope", "use Namespaced"),
    ],
    ids=["claim names on a namespaced definition", "an unknown scope"],
)
def test_a_bad_scope_names_the_field_and_the_fix(change: dict[str, object], field: str, fix: str) -> None:
    definition = builders.namespaced_definition()
    definition["spec"].update(change)
    with pytest.raises(xrd.DefinitionError) as caught:
        xrd.generated_crds(definition)
    assert caught.value.field == field
    assert fix in caught.value.fix


def test_two_teams_composites_of_one_name_get_two_clusters() -> None:
    a = xrd.cluster_name(builders.team_cluster("dev", "team-a"))
    b = xrd.cluster_name(builders.team_cluster("dev", "team-b"))
    assert a != b and a.startswith("dev-") and b.startswith("dev-")
    # a claim's composite (cluster-scoped) keeps its own name
    assert xrd.cluster_name({"metadata": {"name": "dev-1a2b3"}}) == "dev-1a2b3"


def test_the_team_is_the_composite_namespace_and_may_not_set_platform_labels() -> None:
    composite = builders.team_cluster(labels={"env": "dev"})
    values = render.composite_values(composite, None, {}, builders.platform([]))
    assert values["claim"] is None
    assert values["labels"] == {"env": "dev", "fleetplane.io/team": "team-b"}
    assert values["name"] == xrd.cluster_name(composite)
    forged = builders.team_cluster(labels={"fleetplane.io/team": "team-a"})
    with pytest.raises(render.ReservedLabelError, match=r"fleetplane\.io/team"):
        render.composite_values(forged, None, {}, builders.platform([]))


def test_render_runs_a_namespaced_composite_through_its_pipeline(tmp_path: pathlib.Path) -> None:
    compositions = tmp_path / "compositions" / "team-cluster"
    compositions.mkdir(parents=True)
    # template.path is read from the folder above the Composition's folder
    (tmp_path / "compositions" / "worker-cluster").mkdir()
    (tmp_path / "compositions" / "worker-cluster" / "template.yaml.j2").write_text(builders.template())
    composition = compositions / "composition.yaml"
    composition.write_text(yaml.safe_dump(builders.pipeline_composition()))
    definition = tmp_path / "definition.yaml"
    definition.write_text(yaml.safe_dump(builders.namespaced_definition()))
    composite = tmp_path / "dev.yaml"
    composite.write_text(yaml.safe_dump(builders.team_cluster()))
    result = runner.invoke(
        app,
        [
            "render",
            str(composite),
            "--definition",
            str(definition),
            "--composition",
            str(composition),
            "--argocd-install",
            str(builders.ARGOCD_INSTALL),
            "-o",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    objects = yaml.safe_load(result.stdout)["items"]
    assert objects[0]["kind"] == "ClusterConfig"
    inventory = next(
        o for o in objects if o["kind"] == "Secret" and o["metadata"].get("namespace") == "argocd"
    )
    assert inventory["metadata"]["labels"]["fleetplane.io/team"] == "team-b"
