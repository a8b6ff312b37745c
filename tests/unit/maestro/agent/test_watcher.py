"""The agent's watcher: which collections it watches for the records it is given, and which
bundles an event or a relist names."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from maestro.agent import watcher as watcher_mod
from maestro.agent.manifests import ManifestMeta
from maestro.agent.records import AppliedRecord
from maestro.agent.watcher import AppliedObjectWatcher, collection_path, index


def record(rid: str, *metas: ManifestMeta) -> AppliedRecord:
    return AppliedRecord(resource_id=rid, version=1, consumer="c1", manifests=metas)


def meta(
    kind: str, resource: str, namespace: str, name: str, group: str = "", version: str = "v1"
) -> ManifestMeta:
    return ManifestMeta(0, group, version, kind, resource, namespace, name)


APP = meta("Application", "applications", "argocd", "guestbook", group="argoproj.io", version="v1alpha1")
CM = meta("ConfigMap", "configmaps", "default", "shared")
NS = meta("Namespace", "namespaces", "", "team-a")
UNRESOLVED = meta("Nope", "", "default", "x")


def test_index_groups_objects_by_collection_and_names_every_bundle_holding_one() -> None:
    got = index([record("w1", APP, CM), record("w2", CM, NS, UNRESOLVED)])
    assert got == {
        ("argoproj.io", "v1alpha1", "applications", "argocd"): {"guestbook": {"w1"}},
        ("", "v1", "configmaps", "default"): {"shared": {"w1", "w2"}},
        ("", "v1", "namespaces", ""): {"team-a": {"w2"}},
    }


def test_collection_paths() -> None:
    assert collection_path(("argoproj.io", "v1alpha1", "applications", "argocd")) == (
        "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications"
    )
    assert collection_path(("", "v1", "namespaces", "")) == "/api/v1/namespaces"


async def test_follow_starts_and_stops_watches_and_reports_the_bundles_an_event_touches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started: dict[str, Any] = {}
    stopped: list[str] = []

    async def fake_follow(rest: Any, path: str, on_list: Any, on_event: Any, **_: Any) -> None:
        started[path] = (on_list, on_event)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            stopped.append(path)
            raise

    monkeypatch.setattr(watcher_mod.watch, "follow", fake_follow)
    changes: list[set[str]] = []
    watcher = AppliedObjectWatcher(object(), changes.append)  # type: ignore[arg-type]
    watcher.follow([record("w1", APP, CM), record("w2", CM)])
    await asyncio.sleep(0)
    apps = "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications"
    cms = "/api/v1/namespaces/default/configmaps"
    assert set(started) == {apps, cms}

    on_list, on_event = started[cms]
    on_event("MODIFIED", {"metadata": {"name": "shared"}})
    on_event("MODIFIED", {"metadata": {"name": "someone-elses"}})
    on_list([])  # a relist names every bundle of the collection: changes may have been missed
    assert changes == [{"w1", "w2"}, {"w1", "w2"}]

    # w1 is deleted: the Applications collection is no longer watched.
    watcher.follow([record("w2", CM)])
    await asyncio.sleep(0)
    assert stopped == [apps]
    started[apps][1]("MODIFIED", {"metadata": {"name": "guestbook"}})
    assert len(changes) == 2
    await watcher.close()
    assert sorted(stopped) == sorted([apps, cms])
