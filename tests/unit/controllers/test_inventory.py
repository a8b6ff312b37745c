"""The inventory reads Argo CD cluster Secrets: base64 data, stringData, and broken Secrets skipped.

Cases: data vs stringData, labels/annotations kept, non-cluster Secrets ignored, missing name or
server, undecodable data, duplicate cluster names; lookups by name and by server; normalize_name.
"""

from __future__ import annotations

from typing import Any

import pytest

from controllers.propagation import inventory

from .builders import cluster_secret


def test_reads_data_and_string_data() -> None:
    inv = inventory.Inventory.from_secrets(
        [
            cluster_secret("c1", labels={"env": "prod"}, annotations={"team": "a"}),
            cluster_secret("c2", plain=True),
        ]
    )
    assert [(c.name, c.server) for c in inv.clusters] == [
        ("c1", "https://c1.example:6443"),
        ("c2", "https://c2.example:6443"),
    ]
    assert inv.clusters[0].labels["env"] == "prod"
    assert inv.clusters[0].annotations == {"team": "a"}
    assert inv.clusters[0].secret_name == "cluster-c1"
    assert inv.problems == ()


BROKEN = [
    (
        "no server",
        {
            "metadata": {"name": "s", "labels": {inventory.SECRET_TYPE_LABEL: "cluster"}},
            "stringData": {"name": "x"},
        },
        "no server",
    ),
    (
        "no name or server",
        {"metadata": {"name": "s", "labels": {inventory.SECRET_TYPE_LABEL: "cluster"}}},
        "no name and server",
    ),
    (
        "not base64",
        {
            "metadata": {"name": "s", "labels": {inventory.SECRET_TYPE_LABEL: "cluster"}},
            "data": {"name": "%%%"},
        },
        "not base64",
    ),
]


@pytest.mark.parametrize(("secret", "words"), [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN])
def test_broken_secrets_become_problems_not_failures(secret: dict[str, Any], words: str) -> None:
    inv = inventory.Inventory.from_secrets([secret, cluster_secret("good")])
    assert inv.names() == ["good"]
    assert len(inv.problems) == 1
    assert "'s'" in inv.problems[0] and words in inv.problems[0]


def test_other_secret_types_are_ignored() -> None:
    other = {
        "metadata": {"name": "repo", "labels": {inventory.SECRET_TYPE_LABEL: "repository"}},
        "stringData": {},
    }
    assert inventory.Inventory.from_secrets([other]) == inventory.Inventory()


def test_duplicate_cluster_names_keep_the_first() -> None:
    first, second = cluster_secret("c1"), cluster_secret("c1", server="https://other")
    second["metadata"]["name"] = "cluster-c1-copy"
    inv = inventory.Inventory.from_secrets([first, second])
    assert [c.server for c in inv.clusters] == ["https://c1.example:6443"]
    assert "already registered by Secret 'cluster-c1'" in inv.problems[0]


def test_lookups() -> None:
    inv = inventory.Inventory.from_secrets(
        [
            cluster_secret("a", server="https://same/"),
            cluster_secret("b", server="https://same"),
            cluster_secret("c"),
        ]
    )
    assert inv.by_name("c") is inv.clusters[2]
    assert inv.by_name("zz") is None
    assert [c.name for c in inv.by_server("https://same")] == ["a", "b"]


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("prod-1", "prod-1"),
        ("My_Cluster", "my-cluster"),
        ("-a.b-", "a.b"),
        ("x" * 300, "x" * 253),
        ("ÄÖ", ""),
    ],
    ids=["already valid", "case and underscore", "trimmed", "truncated", "non-ascii"],
)
def test_normalize_name(raw: str, normalized: str) -> None:
    assert inventory.normalize_name(raw) == normalized
