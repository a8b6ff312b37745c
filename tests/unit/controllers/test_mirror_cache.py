"""The propagation's view of the hub mirrors: what a pass reads of it after a list, watch events
and its own writes, in the orders a watch that runs behind delivers them."""

from __future__ import annotations

from typing import Any, cast

import pytest

from controllers import contract, hub
from controllers.propagation import mirror_cache
from controllers.propagation.mirror_cache import MirrorCache


def mirror(
    name: str, version: int, *, appset: str = "apps/web", mirror_hash: str = "h1", **extra: str
) -> dict[str, Any]:
    annotations = {contract.ANNOTATION_APPSET: appset, contract.ANNOTATION_MIRROR_HASH: mirror_hash, **extra}
    return {
        "metadata": {
            "namespace": "apps",
            "name": name,
            "resourceVersion": str(version),
            "annotations": annotations,
            "labels": {contract.LABEL_APPSET_NAME: "web"},
            "managedFields": [{"manager": "fleetplane-propagation"}],
        }
    }


def cache() -> MirrorCache:
    return MirrorCache(cast(Any, None))  # fed by hand: no watch runs


async def hashes(view: MirrorCache, appset: str = "web") -> dict[str, str]:
    return {
        m["metadata"]["name"]: m["metadata"]["annotations"][contract.ANNOTATION_MIRROR_HASH]
        for m in await view.mirrors("apps", appset)
    }


async def test_a_pass_reads_its_own_mirrors_with_the_annotations_it_needs() -> None:
    view = cache()
    view._listed(
        [
            mirror("c1-web", 5, **{contract.ANNOTATION_REFRESH: "normal", "note": "not kept"}),
            mirror("c2-web", 6),
            mirror("c1-db", 7, appset="apps/db"),
        ]
    )
    assert await hashes(view) == {"c1-web": "h1", "c2-web": "h1"}
    assert await hashes(view, "db") == {"c1-db": "h1"}
    first = (await view.mirrors("apps", "web"))[0]["metadata"]
    assert first["annotations"] == {
        contract.ANNOTATION_APPSET: "apps/web",
        contract.ANNOTATION_MIRROR_HASH: "h1",
        contract.ANNOTATION_REFRESH: "normal",
    }
    assert await view.mirrors("other", "web") == []


async def test_watch_events_add_change_move_and_delete_mirrors() -> None:
    view = cache()
    view._listed([mirror("c1-web", 5)])
    view._changed("ADDED", mirror("c2-web", 6))
    view._changed("MODIFIED", mirror("c1-web", 7, mirror_hash="h2"))
    view._changed("MODIFIED", mirror("c2-web", 8, appset="apps/db"))
    assert await hashes(view) == {"c1-web": "h2"}
    assert await hashes(view, "db") == {"c2-web": "h1"}
    view._changed("DELETED", mirror("c1-web", 9, mirror_hash="h2"))
    assert await hashes(view) == {}
    assert len(view) == 1


async def test_what_a_pass_wrote_is_not_undone_by_an_older_event() -> None:
    view = cache()
    view._listed([mirror("c1-web", 5)])
    view.wrote(mirror("c1-web", 9, mirror_hash="h3")["metadata"])
    view._changed("MODIFIED", mirror("c1-web", 7, mirror_hash="h2"))  # the watch, behind
    assert await hashes(view) == {"c1-web": "h3"}
    view._changed("MODIFIED", mirror("c1-web", 10, mirror_hash="h3"))  # a status patch after it
    assert (await view.mirrors("apps", "web"))[0]["metadata"]["resourceVersion"] == "10"


async def test_a_mirror_deleted_and_created_again_by_passes_survives_the_old_deletion_event() -> None:
    view = cache()
    view._listed([mirror("c1-web", 5)])
    view.removed("apps", "c1-web")
    view._changed("MODIFIED", mirror("c1-web", 6))  # written before the deletion
    assert await hashes(view) == {}
    view.wrote(mirror("c1-web", 12, mirror_hash="h4")["metadata"])
    view._changed("DELETED", mirror("c1-web", 8))  # the first one's deletion, seen late
    assert await hashes(view) == {"c1-web": "h4"}


async def test_a_new_list_replaces_everything_held() -> None:
    view = cache()
    view._listed([mirror("c1-web", 5), mirror("c2-web", 6)])
    view.removed("apps", "c2-web")
    view._listed([mirror("c3-web", 20)])
    assert await hashes(view) == {"c3-web": "h1"}


async def test_a_pass_before_the_first_list_fails_as_if_the_hub_were_away(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(mirror_cache, "SYNC_TIMEOUT_SECONDS", 0.05)
    with pytest.raises(hub.ClusterUnavailableError, match="were not listed within"):
        await cache().mirrors("apps", "web")
