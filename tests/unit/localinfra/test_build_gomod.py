"""The scratch Go module is derived from the upstream go.mod files, not hand-copied.

Cases: staging modules of k8s.io/kubernetes are pinned to the release; versioned replace lines of
Argo CD are carried over, in block and single-line form; local-path replaces are dropped.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from localinfra import build, versions

KUBE_GOMOD = """module k8s.io/kubernetes

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
)
"""

ARGO_GOMOD = """module github.com/argoproj/argo-cd/v3

replace (
\tgithub.com/golang/protobuf => github.com/golang/protobuf v1.5.4
\t// Avoid CVE-2022-3064
\tgopkg.in/yaml.v2 => gopkg.in/yaml.v2 v2.4.0
\tk8s.io/api => k8s.io/api v0.37.0
)

replace github.com/argoproj/argo-cd/gitops-engine/v3 => ./gitops-engine
replace example.com/single => example.com/single v1.0.0
"""


def test_staging_modules_are_pinned_to_the_release(tmp_path: Path) -> None:
    gomod = tmp_path / "go.mod"
    gomod.write_text(KUBE_GOMOD)
    assert build._staging_replaces(gomod) == [
        f"k8s.io/api => k8s.io/api {versions.KUBERNETES_STAGING}",
        f"k8s.io/client-go => k8s.io/client-go {versions.KUBERNETES_STAGING}",
    ]


@pytest.mark.parametrize(
    ("line", "kept"),
    [
        ("github.com/golang/protobuf => github.com/golang/protobuf v1.5.4", True),
        ("gopkg.in/yaml.v2 => gopkg.in/yaml.v2 v2.4.0", True),
        ("example.com/single => example.com/single v1.0.0", True),
        ("github.com/argoproj/argo-cd/gitops-engine/v3 => ./gitops-engine", False),
    ],
    ids=["block", "after-comment", "single-line", "local-path-dropped"],
)
def test_versioned_replaces_carry_over(tmp_path: Path, line: str, kept: bool) -> None:
    gomod = tmp_path / "go.mod"
    gomod.write_text(ARGO_GOMOD)
    assert (line in build._versioned_replaces(gomod)) is kept
