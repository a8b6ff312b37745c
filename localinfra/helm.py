"""The real ``helm`` CLI, compiled from its Go module at the version in :mod:`localinfra.versions`.

It installs fleetplane's charts (``charts/``); the chart tests run it against the hub's
kube-apiserver.
"""

from __future__ import annotations

from pathlib import Path

from localinfra import build_steps, paths, versions
from localinfra.progress import Reporter, stderr_reporter, step

HELM_MODULE = "helm.sh/helm/v4"
# Seconds a cold build takes on 2 cores with the Go toolchain cached (about 5 minutes with other
# builds sharing the cores): what a progress display shows as left.
ESTIMATE = 300.0


def helm_path() -> Path:
    return paths.bin_dir() / "helm"


def ensure_helm(report: Reporter = stderr_reporter) -> None:
    target = helm_path()
    with build_steps.building("helm", versions.HELM, [target]) as needed:
        if not needed:
            return
        build_steps.require_tool("go", "install Go >= 1.26 (https://go.dev/doc/install) and put it on PATH")
        work = paths.build_dir("helm")
        work.mkdir(parents=True, exist_ok=True)
        log = work / "build.log"
        (work / "go.mod").write_text("module fleetplane.local/helmbuild\n\ngo 1.26.0\n")
        with step(report, f"building Helm {versions.HELM} from its Go module", estimate=ESTIMATE):
            build_steps.go_get_and_build(
                [f"{HELM_MODULE}/cmd/helm@{versions.HELM}"],
                f"{HELM_MODULE}/cmd/helm",
                target,
                # `helm version` reports the release, not the minor that the source tree carries.
                version_flag=f"-X {HELM_MODULE}/internal/version.version={versions.HELM}",
                work=work,
                log=log,
                name="helm",
                report=report,
            )
