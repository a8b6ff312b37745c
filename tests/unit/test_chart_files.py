"""The fleetplane-hub chart's copies of the code base's CRDs and worker-cluster definition are
current (``charts/render_crds.py`` writes them), both charts share one library of templates, and
the hub chart's leader-election defaults are the operators'."""

from __future__ import annotations

import runpy
from pathlib import Path

import yaml

from kubeio.lease import LeaderElection
from localinfra import hub_argocd, hub_gitops, versions

CHARTS = Path(__file__).resolve().parents[2] / "charts"
RENDER = runpy.run_path(str(CHARTS / "render_crds.py"))


def test_the_chart_copies_are_current() -> None:
    assert RENDER["stale"]() == [], "run: python charts/render_crds.py"
    assert RENDER["main"](["--check"]) == 0


def test_the_chart_crds_are_the_platform_crds() -> None:
    text = (CHARTS / "fleetplane-hub" / "crds" / "platform-crds.yaml").read_text()
    names = [doc["metadata"]["name"] for doc in yaml.safe_load_all(text) if doc]
    assert names == [
        "compositeresourcedefinitions.fleetplane.io",
        "compositions.fleetplane.io",
        "compositionrevisions.fleetplane.io",
    ]


def test_both_charts_use_the_shared_library() -> None:
    for chart in ("fleetplane-hub", "fleetplane-agent"):
        link = CHARTS / chart / "charts" / "fleetplane-common"
        assert link.is_symlink() and link.resolve() == (CHARTS / "fleetplane-common").resolve()


def test_the_chart_elects_leaders_with_the_operators_own_defaults() -> None:
    """Two replicas of each operator, and the timings ``fleetplane controllers|provisioner run``
    default to: the chart passes them explicitly, so they must not drift apart."""
    values = yaml.safe_load((CHARTS / "fleetplane-hub" / "values.yaml").read_text())
    defaults = LeaderElection(name="x", namespace="x", identity="x")
    election = values["leaderElection"]
    assert election["enabled"] is True
    assert (election["leaseDuration"], election["renewDeadline"], election["retryPeriod"]) == (
        defaults.lease_duration,
        defaults.renew_deadline,
        defaults.retry_period,
    )
    assert values["controllers"]["replicas"] == values["provisioner"]["replicas"] == 2


def test_the_hub_argo_cd_runs_the_release_fleetplane_builds_and_the_local_stacks_settings() -> None:
    values = yaml.safe_load((CHARTS / "fleetplane-hub" / "values.yaml").read_text())
    assert values["argocd"]["image"]["tag"] == versions.ARGOCD
    assert values["argocd"]["server"]["enabled"] is False and values["gitops"]["enabled"] is False
    files = CHARTS / "fleetplane-hub" / "files" / "argocd"
    server = yaml.safe_load((files / "server.yaml").read_text())
    assert server["rbac"] == hub_argocd.rbac_policy()
    assert server["settings"] == hub_argocd.SERVER_SETTINGS
    gitops = yaml.safe_load((files / "gitops.yaml").read_text())
    assert gitops["settings"] == hub_gitops.controller_settings()
    assert gitops["clusterRules"] == hub_gitops.cluster_rules()
