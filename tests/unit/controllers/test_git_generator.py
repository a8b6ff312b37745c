"""The git generator's parameters and its reader.

Cases: Go's ``path.Match`` (``*`` stops at ``/``, classes, escapes, malformed patterns match
nothing); directories filtered by include and exclude patterns, with fasttemplate and goTemplate
parameters and ``pathParamPrefix``; files (maps, lists, numbers as Go's float64, exclusions,
values templated from the set); an unread or unreadable repository is an error naming it;
``referenced_git`` collects each revision's patterns through matrix and merge; the reader walks
directories as Go's ``filepath.WalkDir`` does (hidden ones skipped) and fetches a new commit only
once its poll interval has passed.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from controllers.propagation import errors, generators, git_generator, git_reader, templating
from localinfra import gitrepo

from .builders import fleet

FAST = templating.Mode()
GO = templating.Mode(go_template=True)
URL = "https://git.example/apps.git"
TREE = generators.GitTree(
    "abc",
    directories=("apps", "apps/one", "apps/one/base", "apps/two", "infra", "infra/Net_Tools"),
    files={
        "config/*.json": (
            ("config/a.json", '{"cluster": {"name": "a", "replicas": 1000000}, "tags": ["x"]}'),
            ("config/b.json", '{"cluster": {"name": "b", "replicas": 3}}'),
        ),
        "config/b.json": (("config/b.json", '{"cluster": {"name": "b", "replicas": 3}}'),),
        "lists/*.yaml": (("lists/apps.yaml", "- app: one\n- app: two\n"),),
    },
)
INPUTS = generators.GeneratorInputs(
    fleet(), git={(URL, "HEAD"): TREE, ("file:///broken", "HEAD"): "no such repo"}
)


def run(body: dict[str, Any], mode: templating.Mode = FAST) -> list[dict[str, Any]]:
    generated = generators.generate_one({"git": {"repoURL": URL, **body}}, INPUTS, mode, path="g")
    return generated.params


@pytest.mark.parametrize(
    ("pattern", "name", "want"),
    [
        ("apps/*", "apps/one", True),
        ("apps/*", "apps/one/base", False),
        ("apps/?wo", "apps/two", True),
        ("apps/[a-o]ne", "apps/one", True),
        ("apps/[^o]*", "apps/one", False),
        ("apps/\\*", "apps/*", True),
        ("apps/[", "apps/[", False),
    ],
)
def test_path_match_is_gos(pattern: str, name: str, want: bool) -> None:
    assert git_generator.path_match(pattern, name) is want


def test_directories_with_exclusions_fasttemplate() -> None:
    params = run({"directories": [{"path": "*/*"}, {"path": "apps/two", "exclude": True}]})
    assert [p["path"] for p in params] == ["apps/one", "infra/Net_Tools"]
    assert params[1] == {
        "path": "infra/Net_Tools",
        "path.basename": "Net_Tools",
        "path.basenameNormalized": "net-tools",
        "path[0]": "infra",
        "path[1]": "Net_Tools",
    }


def test_directories_gotemplate_with_prefix_and_values() -> None:
    params = run(
        {
            "directories": [{"path": "apps/one"}],
            "pathParamPrefix": "src",
            "values": {"ns": "{{ .src.path.basename }}-ns"},
        },
        GO,
    )
    assert params == [
        {
            "src": {
                "path": {
                    "path": "apps/one",
                    "basename": "one",
                    "basenameNormalized": "one",
                    "segments": ["apps", "one"],
                }
            },
            "values": {"ns": "one-ns"},
        }
    ]


def test_files_flattened_with_go_numbers_and_exclusions() -> None:
    params = run({"files": [{"path": "config/*.json"}, {"path": "config/b.json", "exclude": True}]})
    assert params == [
        {
            "cluster.name": "a",
            "cluster.replicas": "1e+06",
            "tags.0": "x",
            "path": "config",
            "path.basename": "config",
            "path.filename": "a.json",
            "path.filenameNormalized": "a.json",
            "path.basenameNormalized": "config",
            "path[0]": "config",
        }
    ]


def test_a_file_holding_a_list_gives_a_set_per_item() -> None:
    params = run({"files": [{"path": "lists/*.yaml"}]}, GO)
    assert [(p["app"], p["path"]["filename"]) for p in params] == [("one", "apps.yaml"), ("two", "apps.yaml")]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (
            {"repoURL": "file:///broken", "directories": [{"path": "*"}]},
            "cannot read file:///broken at HEAD: no such",
        ),
        ({"repoURL": "file:///other", "directories": [{"path": "*"}]}, "was not read"),
        ({"directories": [{"path": "*"}], "files": [{"path": "*"}]}, "exactly one of directories and files"),
        ({"directories": [{"path": "*", "exlude": True}]}, "unknown field"),
    ],
    ids=["unreadable", "not read", "both kinds", "typo"],
)
def test_git_errors_name_the_problem(body: dict[str, Any], words: str) -> None:
    with pytest.raises(errors.GeneratorError, match=words):
        run(body)


def test_referenced_git_collects_patterns_through_matrix_and_merge() -> None:
    spec = {
        "generators": [
            {"git": {"repoURL": URL, "files": [{"path": "a/*.json"}]}},
            {
                "matrix": {
                    "generators": [
                        {
                            "git": {
                                "repoURL": URL,
                                "revision": "HEAD",
                                "files": [{"path": "b/*", "exclude": True}],
                            }
                        },
                        {
                            "merge": {
                                "generators": [{"git": {"repoURL": URL, "revision": "v1", "directories": []}}]
                            }
                        },
                    ]
                }
            },
            {"git": {"repoURL": "{{ .url }}", "directories": [{"path": "*"}]}},
        ]
    }
    assert generators.referenced_git(spec) == [
        generators.GitRequest(URL, "HEAD", ("a/*.json", "b/*")),
        generators.GitRequest(URL, "v1", ()),
    ]


def test_reader_walks_like_go_and_polls(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    files = {"a/x.yaml": "k: 1\n", "a-b/y.yaml": "k: 2\n", "a/b/z.yaml": "k: 3\n", ".hidden/h.yaml": "k: 4\n"}
    gitrepo.commit(repo, files, "first")
    reader = git_reader.GitReader(tmp_path / "cache", poll_seconds=3600)
    request = generators.GitRequest(gitrepo.url(repo), "HEAD", ("a/*",))
    tree = asyncio.run(reader.tree(request))
    assert isinstance(tree, generators.GitTree)
    assert tree.directories == ("a", "a/b", "a-b")
    assert [name for name, _ in tree.files["a/*"]] == ["a/b/z.yaml", "a/x.yaml"]
    gitrepo.commit(repo, {"c/new.yaml": "k: 5\n"}, "second")
    assert asyncio.run(reader.tree(request)) == tree, "read again only after the poll interval"
    reader.poll_seconds = 0
    assert "c" in asyncio.run(reader.tree(request)).directories  # type: ignore[union-attr]
    missing = asyncio.run(reader.tree(generators.GitRequest(gitrepo.url(tmp_path / "none"), "HEAD")))
    assert isinstance(missing, str) and "git fetch" in missing


def test_options_are_not_taken_for_a_repository_or_revision() -> None:
    with pytest.raises(errors.GeneratorError, match="must not start with '-'"):
        run({"revision": "--upload-pack=touch x", "directories": [{"path": "*"}]})
    reader = git_reader.GitReader(Path("/nonexistent"))
    refused = asyncio.run(reader.tree(generators.GitRequest("--upload-pack=x", "HEAD")))
    assert isinstance(refused, str) and "must not start with '-'" in refused
