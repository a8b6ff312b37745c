"""An operator that serves a CRD while it runs waits until kopf watches the new kind."""

from __future__ import annotations

import asyncio
from typing import Any

import kopf
import pytest

from kubeio.errors import ClusterUnavailableError
from kubeio.kopf_operator import LateKinds

CRD = "clusterclaims.platform.fleetplane.io"
KIND = kopf.Resource("platform.fleetplane.io", "v1alpha1", "clusterclaims")


class Hub:
    """Records the CRD patches; ``on_patch`` plays kopf's rescan reacting to the event."""

    def __init__(self) -> None:
        self.patches: list[tuple[str, Any]] = []
        self.on_patch: list[Any] = []

    async def request(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        self.patches.append((path, kw["body"]))
        for hook in self.on_patch:
            await hook()
        return {}


def late_kinds(hub: Hub, **kw: Any) -> LateKinds:
    return LateKinds(hub, nudge_every=0.05, **kw)  # type: ignore[arg-type]


async def reveal(kinds: LateKinds) -> None:
    async with kinds.insights.revised:
        kinds.insights.watched_resources.add(KIND)
        kinds.insights.revised.notify_all()


async def test_a_kind_kopf_already_watches_needs_no_nudge() -> None:
    hub = Hub()
    kinds = late_kinds(hub)
    kinds.insights.watched_resources.add(KIND)

    await kinds.ensure_watched([CRD])

    assert hub.patches == []


async def test_a_kind_kopf_picks_up_by_itself_within_the_wait_needs_no_nudge() -> None:
    hub = Hub()
    kinds = late_kinds(hub)
    asyncio.get_running_loop().call_later(0.01, lambda: asyncio.ensure_future(reveal(kinds)))

    await kinds.ensure_watched([CRD])

    assert hub.patches == []


async def test_a_missed_kind_is_nudged_with_an_annotation_until_kopf_watches_it() -> None:
    hub = Hub()
    kinds = late_kinds(hub)
    # the first rescan still misses it (discovery lags); the second one sees it
    calls = 0

    async def rescan() -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            await reveal(kinds)

    hub.on_patch.append(rescan)

    await kinds.ensure_watched([CRD])

    assert len(hub.patches) == 2
    paths = {path for path, _ in hub.patches}
    assert paths == {f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRD}"}
    stamps = [body["metadata"]["annotations"][LateKinds.NUDGE_ANNOTATION] for _, body in hub.patches]
    assert len(set(stamps)) == 2, "each nudge must change the CRD, or it makes no watch event"


async def test_a_kind_never_watched_fails_naming_the_crd() -> None:
    kinds = late_kinds(Hub(), timeout=0.2)

    with pytest.raises(ClusterUnavailableError, match=CRD):
        await kinds.ensure_watched([CRD])
