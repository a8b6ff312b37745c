"""The management Argo CD may manage the platform's kinds and nothing else, and the example platform
repository holds only what its project lets it sync."""

from __future__ import annotations

from pathlib import Path

import yaml

from fleetplane.demo import gitops, journey
from localinfra import hub_gitops, hub_gitops_health
from provisioner import operator
from tests import examples

PLATFORM_REPO = examples.EXAMPLES / "platform-repo"


def _rules() -> dict[str, list[dict[str, object]]]:
    return {o["kind"]: o["rules"] for o in hub_gitops.rbac_objects() if "rules" in o}


def test_its_account_reads_argo_cds_configuration_and_writes_only_the_platforms_kinds() -> None:
    rules = _rules()
    writes = {
        (group, resource)
        for rule in rules["ClusterRole"]
        if {"create", "update", "patch", "delete"} & set(rule["verbs"])  # type: ignore[arg-type]
        for group in rule["apiGroups"]  # type: ignore[attr-defined]
        for resource in rule["resources"]  # type: ignore[attr-defined]
    }
    assert writes == {
        ("fleetplane.io", "compositeresourcedefinitions"),
        ("fleetplane.io", "compositions"),
        ("platform.fleetplane.io", "*"),
        ("argoproj.io", "applicationsets"),
        ("", "namespaces"),
    }
    namespaces = next(r for r in rules["ClusterRole"] if r["resources"] == ["namespaces"])
    assert "delete" not in namespaces["verbs"]  # type: ignore[operator]
    # Secrets and ConfigMaps: read, in Argo CD's namespace only; Applications: their status.
    namespaced = {r["resources"][0]: set(r["verbs"]) for r in rules["Role"]}  # type: ignore[index, arg-type]
    assert namespaced["configmaps"] == namespaced["appprojects"] == {"get", "list", "watch"}
    assert "delete" not in namespaced["applications"] and "create" not in namespaced["applications"]
    assert all("*" not in rule["apiGroups"] for rule in rules["ClusterRole"])  # type: ignore[operator]


def test_the_project_syncs_its_repositories_to_the_hub_only() -> None:
    project = hub_gitops.project(["file:///platform"])["spec"]
    assert project["sourceRepos"] == ["file:///platform"]
    assert project["destinations"] == [{"server": hub_gitops.IN_CLUSTER, "namespace": "*"}]
    kinds = {
        (k["group"], k["kind"])
        for k in project["clusterResourceWhitelist"] + project["namespaceResourceWhitelist"]
    }
    assert ("argoproj.io", "Application") not in kinds and ("", "Secret") not in kinds


def test_the_controller_caches_no_application_and_judges_every_platform_kind() -> None:
    included = {(g, k) for rule in hub_gitops.INCLUSIONS for g in rule["apiGroups"] for k in rule["kinds"]}
    assert ("argoproj.io", "ApplicationSet") in included
    assert not any(g == "argoproj.io" and k in ("*", "Application") for g, k in included)
    data = hub_gitops_health.argocd_cm_data()
    assert set(data) == {
        "resource.customizations.health.fleetplane.io_CompositeResourceDefinition",
        "resource.customizations.health.fleetplane.io_Composition",
        "resource.customizations.health.platform.fleetplane.io_ClusterClaim",
        "resource.customizations.health.platform.fleetplane.io_WorkerCluster",
    }


def _permitted(doc: dict[str, object]) -> bool:
    group = str(doc["apiVersion"]).rpartition("/")[0]
    project = hub_gitops.project(["*"])["spec"]
    allowed = project["clusterResourceWhitelist"] + project["namespaceResourceWhitelist"]
    return any(a["group"] == group and a["kind"] in ("*", doc["kind"]) for a in allowed)


def test_the_example_platform_repository_holds_only_what_the_project_syncs() -> None:
    files = sorted(PLATFORM_REPO.rglob("*.yaml"))
    assert {str(f.relative_to(PLATFORM_REPO)) for f in files} == {
        "teams/team-a/namespace.yaml",
        "teams/team-a/dev-1.yaml",
        "applicationsets/guestbook-dev.yaml",
    }
    docs = [d for f in files for d in examples.documents(f)]
    assert all(_permitted(d) for d in docs), [d["kind"] for d in docs if not _permitted(d)]
    platform = [
        d for text in gitops.platform_files(operator.COMPOSITIONS_DIR / "worker-cluster").values()
        for d in yaml.safe_load_all(text)
    ]  # fmt: skip
    assert [d["kind"] for d in platform] == ["CompositeResourceDefinition", "Composition"]
    assert all(_permitted(d) for d in platform)
    assert all(d["metadata"]["annotations"][gitops.SYNC_WAVE] == "-1" for d in platform)


def test_a_teams_files_keep_its_namespace_and_let_claims_wait_for_their_kind() -> None:
    claim = yaml.safe_load((PLATFORM_REPO / "teams/team-a/dev-1.yaml").read_text())
    files = gitops.team_files("team-a", [claim])
    assert set(files) == {"teams/team-a/namespace.yaml", "teams/team-a/dev-1.yaml"}
    ns = yaml.safe_load(files["teams/team-a/namespace.yaml"])
    assert ns["metadata"]["annotations"][gitops.SYNC_OPTIONS] == "Prune=false"
    written = yaml.safe_load(files["teams/team-a/dev-1.yaml"])
    assert written["metadata"]["annotations"][gitops.SYNC_OPTIONS] == "SkipDryRunOnMissingResource=true"
    assert written["spec"] == claim["spec"]


def test_the_demo_cases_are_commits_to_the_applicationset_file(tmp_path: Path) -> None:
    stage = journey.Stage(None, [], "file:///apps", tmp_path, {}, list)  # type: ignore[arg-type]
    shown = [s.shown for s in gitops.demo_steps(tmp_path / "platform")(stage)]
    assert all(f"git -C {tmp_path / 'platform'}" in s for s in shown)
    assert journey.MISSING_REPO in shown[0] and "file:///apps" in shown[1]
    assert f"rm {gitops.APPSET_FILE}" in shown[2]
