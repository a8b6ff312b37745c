"""What the UI build reads from Argo CD's ui/package.json and how it swaps argo-ui's Git URL for a
local copy: the pin is found, a local folder replaces only argo-ui's entry, a folder that is not
argo-ui is refused naming the option, and a cached build of another version is not served."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localinfra import argocd_ui, versions
from localinfra.errors import InfraError

COMMIT = "f941b0a3ca094066dd9d5e002f48acdc5fda45a0"
PACKAGE = {
    "name": "argo-cd-ui",
    "packageManager": "pnpm@10.28.1",
    "dependencies": {
        "argo-ui": f"git+https://github.com/argoproj/argo-ui.git#{COMMIT}",
        "react": "^19.0.0",
    },
}


def test_the_pinned_argo_ui_commit_is_read() -> None:
    dependency = argocd_ui.argo_ui_dependency(PACKAGE)
    assert dependency == argocd_ui.Dependency("https://github.com/argoproj/argo-ui.git", COMMIT)


def test_an_unpinned_argo_ui_is_an_error() -> None:
    with pytest.raises(InfraError, match="no pinned argo-ui"):
        argocd_ui.argo_ui_dependency({"dependencies": {"argo-ui": "^1.0.0"}})


def test_the_pnpm_version_is_the_one_package_json_names() -> None:
    assert argocd_ui.package_manager({"packageManager": "pnpm@10.28.1+sha512.abc"}) == "10.28.1"
    with pytest.raises(InfraError, match=r"yarn@1\.22\.0"):
        argocd_ui.package_manager({"packageManager": "yarn@1.22.0"})


def test_a_local_copy_replaces_only_argo_ui(tmp_path: Path) -> None:
    changed = argocd_ui.with_local_argo_ui(PACKAGE, tmp_path)
    assert changed["dependencies"] == {"argo-ui": f"file:{tmp_path}", "react": "^19.0.0"}
    assert changed["packageManager"] == PACKAGE["packageManager"]
    assert PACKAGE["dependencies"]["argo-ui"].startswith("git+")


def test_the_argo_ui_folder_comes_from_the_option_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "package.json").write_text(json.dumps({"name": "argo-ui"}))
    monkeypatch.delenv(argocd_ui.ARGO_UI_DIR_ENV, raising=False)
    assert argocd_ui.resolve_argo_ui_dir(None) is None
    assert argocd_ui.resolve_argo_ui_dir(tmp_path) == tmp_path.resolve()
    monkeypatch.setenv(argocd_ui.ARGO_UI_DIR_ENV, str(tmp_path))
    assert argocd_ui.resolve_argo_ui_dir(None) == tmp_path.resolve()


def test_a_folder_without_argo_ui_is_refused_naming_the_option(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text(json.dumps({"name": "something-else"}))
    with pytest.raises(InfraError, match="--argo-ui-dir") as raised:
        argocd_ui.resolve_argo_ui_dir(tmp_path)
    assert "argo-ui repository" in raised.value.fix


def test_only_a_finished_build_of_this_version_is_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEETPLANE_CACHE", str(tmp_path))
    folder = argocd_ui.assets_dir()
    assert folder == tmp_path / f"argocd-ui-{versions.ARGOCD}"
    assert argocd_ui.built_assets() is None
    folder.mkdir()
    (folder / "index.html").write_text("<html></html>")
    assert argocd_ui.built_assets() is None, "no stamp: a build that did not finish"
    stamp = folder / ".fleetplane-build.json"
    stamp.write_text(json.dumps({"argocd": "v0.0.1"}))
    assert argocd_ui.built_assets() is None
    stamp.write_text(json.dumps({"argocd": versions.ARGOCD}))
    assert argocd_ui.built_assets() == folder
