"""The argocd binary with the web UI embedded: the module copy carries the built UI as real files in
``ui/dist/app`` (leaving the read-only module cache as it was), and a binary is only run while it
was built from the UI now in the cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localinfra import argocd_ui, argocd_ui_binary, versions


def _assets(folder: Path, index: str = "<html>one</html>") -> Path:
    (folder / "assets" / "images" / "resources").mkdir(parents=True)
    (folder / "index.html").write_text(index)
    (folder / "assets" / "images" / "resources" / "icon.svg").write_text("<svg/>")
    (folder / argocd_ui.STAMP).write_text(json.dumps({"argocd": versions.ARGOCD, "argo-ui": "x"}))
    return folder


def test_the_copy_embeds_the_built_ui_and_leaves_the_module_untouched(tmp_path: Path) -> None:
    module = tmp_path / "module"
    (module / "ui" / "dist" / "app").mkdir(parents=True)
    (module / "ui" / "dist" / "app" / "gitkeep").write_text("")
    (module / "ui" / "embed.go").write_text("package ui\n")
    for folder in (module / "ui" / "dist" / "app", module / "ui" / "dist", module / "ui", module):
        folder.chmod(0o555)  # as the module cache keeps it
    assets = _assets(tmp_path / "assets")
    copy = tmp_path / "copy"
    try:
        argocd_ui_binary.module_copy(module, assets, copy)
        argocd_ui_binary.module_copy(module, assets, copy)  # a second build replaces the first copy
    finally:
        for folder in (module, module / "ui", module / "ui" / "dist", module / "ui" / "dist" / "app"):
            folder.chmod(0o755)
    dist = copy / "ui" / "dist" / "app"
    assert (copy / "ui" / "embed.go").read_text() == "package ui\n"
    assert sorted(p.name for p in dist.iterdir()) == ["assets", "index.html"]
    assert not (dist / "index.html").is_symlink(), "go:embed refuses symbolic links"
    assert (dist / "assets" / "images" / "resources" / "icon.svg").read_text() == "<svg/>"
    assert [p.name for p in (module / "ui" / "dist" / "app").iterdir()] == ["gitkeep"]


def test_only_a_binary_built_from_the_cached_ui_is_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLEETPLANE_CACHE", str(tmp_path))
    binary = argocd_ui_binary.binary_path()
    assert binary == tmp_path / "bin" / f"argocd-with-ui-{versions.ARGOCD}"
    assert argocd_ui_binary.built_binary() is None, "no UI built"
    assets = _assets(argocd_ui.assets_dir())
    binary.parent.mkdir(parents=True)
    binary.write_bytes(b"\x7fELF")
    assert argocd_ui_binary.built_binary() is None, "no stamp: a build that did not finish"
    argocd_ui_binary.mark_built(assets)
    assert argocd_ui_binary.built_binary() == binary
    (assets / "index.html").write_text("<html>two</html>")
    assert argocd_ui_binary.built_binary() is None, "the UI was rebuilt since: the binary embeds the old one"


def test_the_build_stamps_the_release_as_argo_cds_makefile_does(tmp_path: Path) -> None:
    module = tmp_path / "argo-cd"
    module.mkdir()
    (module / "VERSION").write_text("3.6.1\n")
    (module / "go.mod").write_text(
        "module github.com/argoproj/argo-cd/v3\n\nrequire (\n\tk8s.io/api v0.37.0\n"
        "\tk8s.io/client-go v0.37.0 // indirect\n)\n\nreplace k8s.io/client-go => k8s.io/client-go v0.37.0\n"
    )
    target = tmp_path / "argocd"
    command = argocd_ui_binary.build_command(module, "2026-11-04T13:21:06Z", target)
    assert command[:2] == ["go", "build"] and "-trimpath" in command
    assert command[-3:] == ["-o", str(target), "github.com/argoproj/argo-cd/v3/cmd"]
    (ldflags,) = [a.removeprefix("-ldflags=") for a in command if a.startswith("-ldflags=")]
    package = "github.com/argoproj/argo-cd/v3/common"
    assert ldflags.split() == [
        "-s",
        "-w",
        *(
            part
            for name, value in [
                ("version", "3.6.1"),
                ("buildDate", "2026-11-04T13:21:06Z"),
                ("gitTag", versions.ARGOCD),
                ("gitTreeState", "clean"),
                ("kubectlVersion", "v0.37.0"),
            ]
            for part in ("-X", f"{package}.{name}={value}")
        ),
    ]
