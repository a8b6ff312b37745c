"""Finding and merging kubeconfigs as kubectl does.

Cases: ``KUBECONFIG`` with two files (the first file wins each cluster, user and context name, and
sets current-context; a later file's current-context does not override it; missing files are
skipped); ``--kubeconfig`` beats ``KUBECONFIG``, which beats ``~/.kube/config``; a chosen context
gives its own cluster's server and user's token; relative paths are made relative to their file;
the minified copy holds only the chosen context; errors name the option that fixes them; in a pod
with no kubeconfig, the service account.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubeio import kubeconfig


def write(path: Path, *contexts: tuple[str, str], current: str | None = None, **extra: Any) -> Path:
    """A kubeconfig of ``(context, server)`` pairs: each context has a cluster and user of its name
    (user token ``<context>-token``)."""
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": c, "cluster": {"server": s}} for c, s in contexts],
        "users": [{"name": c, "user": {"token": f"{c}-token"}} for c, _ in contexts],
        "contexts": [{"name": c, "context": {"cluster": c, "user": c}} for c, _ in contexts],
        **extra,
    }
    if current is not None:
        doc["current-context"] = current
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def two(tmp_path: Path) -> tuple[Path, Path]:
    a = write(
        tmp_path / "a", ("shared", "http://a.example:6443"), ("only-a", "http://oa:1"), current="shared"
    )
    b = write(
        tmp_path / "b", ("shared", "http://b.example:6443"), ("only-b", "http://ob:2"), current="only-b"
    )
    return a, b


def env_of(*files: Path, **more: str) -> dict[str, str]:
    return {"KUBECONFIG": os.pathsep.join(str(f) for f in files), **more}


def test_the_first_file_wins_each_name_and_the_current_context(two: tuple[Path, Path]) -> None:
    a, b = two
    config = kubeconfig.load(env=env_of(a, b))
    assert config.files == (a, b)
    assert config.context == "shared" and config.merged["current-context"] == "shared"
    assert [c["name"] for c in config.merged["contexts"]] == ["shared", "only-a", "only-b"]
    assert config.credentials().server == "http://a.example:6443"
    assert config.credentials().authorization == "Bearer shared-token"


def test_a_later_files_current_context_applies_when_the_first_sets_none(tmp_path: Path) -> None:
    a = write(tmp_path / "a", ("x", "http://x:1"))
    b = write(tmp_path / "b", ("y", "http://y:2"), current="y")
    assert kubeconfig.load(env=env_of(a, b)).context == "y"


def test_missing_files_in_the_list_are_skipped(two: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = two
    config = kubeconfig.load(env=env_of(tmp_path / "nope", b, a))
    assert config.files == (b, a) and config.context == "only-b"


def test_a_chosen_context_gives_its_own_cluster_and_user(two: tuple[Path, Path]) -> None:
    a, b = two
    config = kubeconfig.load(context="only-b", env=env_of(a, b))
    assert config.credentials().server == "http://ob:2"
    assert config.credentials().authorization == "Bearer only-b-token"
    minified = config.minified()
    assert minified["current-context"] == "only-b"
    assert [c["name"] for c in minified["contexts"]] == ["only-b"]
    assert minified["clusters"] == [{"name": "only-b", "cluster": {"server": "http://ob:2"}}]
    assert minified["users"] == [{"name": "only-b", "user": {"token": "only-b-token"}}]


def test_the_option_beats_the_variable_which_beats_the_home_file(
    two: tuple[Path, Path], tmp_path: Path
) -> None:
    a, b = two
    home = write(tmp_path / "home" / ".kube" / "config", ("home", "http://home:3"), current="home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(tmp_path / "home"))
        assert kubeconfig.load(env={}).files == (home,)
        assert kubeconfig.load(env=env_of(b)).files == (b,)
        assert kubeconfig.load(str(a), env=env_of(b)).files == (a,)


def test_relative_paths_are_relative_to_their_file(tmp_path: Path) -> None:
    folder = tmp_path / "conf"
    path = write(
        folder / "config",
        ("c", "https://c:6443"),
        current="c",
    )
    doc = yaml.safe_load(path.read_text())
    doc["clusters"][0]["cluster"]["certificate-authority"] = "pki/ca.crt"
    doc["users"][0]["user"] = {
        "client-certificate": "pki/user.crt",
        "client-key": "/abs/user.key",
        "exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "./bin/login"},
    }
    path.write_text(yaml.safe_dump(doc))
    merged = kubeconfig.load(str(path)).merged
    folder = folder.resolve()
    assert merged["clusters"][0]["cluster"]["certificate-authority"] == str(folder / "pki/ca.crt")
    user = merged["users"][0]["user"]
    assert user["client-certificate"] == str(folder / "pki/user.crt")
    assert user["client-key"] == "/abs/user.key"
    assert user["exec"]["command"] == str(folder / "bin/login")


def test_errors_name_what_fixes_them(two: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = two
    empty_home = {"HOME": str(tmp_path / "empty")}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(tmp_path / "empty"))
        with pytest.raises(kubeconfig.KubeconfigError, match="pass --kubeconfig FILE or set KUBECONFIG"):
            kubeconfig.load(env=empty_home)
    with pytest.raises(kubeconfig.KubeconfigError, match="--kubeconfig /nope: no such file"):
        kubeconfig.load("/nope", env={})
    with pytest.raises(
        kubeconfig.KubeconfigError, match="pass --context with one of: shared, only-a, only-b"
    ):
        kubeconfig.load(context="other", env=env_of(a, b))
    nothing_current = write(tmp_path / "c", ("x", "http://x:1"))
    with pytest.raises(kubeconfig.KubeconfigError, match="sets no current-context: pass --context"):
        kubeconfig.load(str(nothing_current), env={})


def test_in_a_pod_without_a_kubeconfig_the_service_account(tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(tmp_path))
        config = kubeconfig.load(env={"KUBERNETES_SERVICE_HOST": "10.0.0.1"})
        assert config.in_cluster
        with pytest.raises(kubeconfig.KubeconfigError, match="--context x: no kubeconfig"):
            kubeconfig.load(context="x", env={"KUBERNETES_SERVICE_HOST": "10.0.0.1"})
