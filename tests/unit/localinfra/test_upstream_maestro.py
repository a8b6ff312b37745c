"""The driver of upstream Maestro's clients takes the open-cluster-management.io modules at the
revisions upstream's go.mod names; its server is upstream's module with replace directives."""

from __future__ import annotations

from localinfra import upstream_maestro

GO_MOD = """module github.com/openshift-online/maestro

go 1.25.12

require (
	github.com/google/uuid v1.6.0
	open-cluster-management.io/api v1.2.1-0.20260305152611-5bfebdbc3fdf
	open-cluster-management.io/ocm v1.2.1
	open-cluster-management.io/sdk-go v1.2.1-0.20260323031834-e885ccee3f1b
)
"""


def test_a_pseudo_version_names_its_commit_and_a_tag_itself() -> None:
    assert upstream_maestro.revision("v1.2.1-0.20260305152611-5bfebdbc3fdf") == "5bfebdbc3fdf"
    assert upstream_maestro.revision("v0.0.0-20251002143259-bc988d571ff4") == "bc988d571ff4"
    assert upstream_maestro.revision("v1.2.1") == "v1.2.1"


def test_the_required_versions_are_read_from_go_mod() -> None:
    assert upstream_maestro.required(GO_MOD, "open-cluster-management.io/api") == (
        "v1.2.1-0.20260305152611-5bfebdbc3fdf"
    )
    assert upstream_maestro.required(GO_MOD, "open-cluster-management.io/ocm") == "v1.2.1"
    assert upstream_maestro.required(GO_MOD, "open-cluster-management.io/addon-framework") is None
    assert (
        upstream_maestro.required(
            "require open-cluster-management.io/api v1.2.0\n", "open-cluster-management.io/api"
        )
        == "v1.2.0"
    )


def test_the_drivers_module_replaces_every_ocm_module_with_its_exported_tree() -> None:
    text = upstream_maestro.go_mod(GO_MOD)
    assert "go 1.25.12" in text
    assert "replace github.com/openshift-online/maestro => ./src/maestro" in text
    for module in upstream_maestro.OCM_MODULES:
        assert f"replace {module} => ./src/{module.rsplit('/', 1)[1]}" in text


def test_the_server_builds_upstreams_module_with_each_ocm_module_replaced_by_its_sibling_tree() -> None:
    assert sorted(upstream_maestro.server_replaces()) == [
        "-replace=open-cluster-management.io/addon-framework=../addon-framework",
        "-replace=open-cluster-management.io/api=../api",
        "-replace=open-cluster-management.io/ocm=../ocm",
        "-replace=open-cluster-management.io/sdk-go=../sdk-go",
    ]
