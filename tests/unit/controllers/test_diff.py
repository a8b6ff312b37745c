"""diff repairs level-based: what to create, update, delete, and what to leave alone and why.

Cases: create/update/delete/unchanged, hashes or bundles, works being deleted, applicationsSync
policies, errors holding works and blocking deletes, hub mirror deletes.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from controllers.propagation import diff, identities, plan

from .builders import GO_TEMPLATE, make


def existing(work: plan.DesiredWork, *, hash_: str | None = None, **kw: Any) -> diff.ExistingWork:
    return diff.ExistingWork(
        work.work_id, work.cluster, work.work_name, spec_hash=hash_ or work.spec_hash, **kw
    )


def stale(name: str = "old-app-0123456789", cluster: str = "c1") -> diff.ExistingWork:
    return diff.ExistingWork("id-" + name, cluster, name, spec_hash="x")


def test_diff_creates_updates_deletes_and_unchanged() -> None:
    p = make()
    c1, c2 = p.works
    d = diff.diff(
        p, [existing(c1), existing(c2, hash_="outdated"), stale()], existing_mirrors=["c1-guestbook", "gone"]
    )
    assert d.creates == ()
    assert d.unchanged == (c1,)
    assert [(w.work_name, e.spec_hash) for w, e in d.updates] == [(c2.work_name, "outdated")]
    assert [e.name for e in d.deletes] == ["old-app-0123456789"]
    assert d.mirror_deletes == ("gone",)
    assert d.notes == ()


def test_diff_compares_bundles_when_there_is_no_hash() -> None:
    p = make()
    c1, c2 = p.works
    same = diff.ExistingWork(c1.work_id, "c1", c1.work_name, bundle=copy.deepcopy(c1.bundle))
    other = diff.ExistingWork(c2.work_id, "c2", c2.work_name, bundle={"manifests": []})
    d = diff.diff(p, [same, other])
    assert d.unchanged == (c1,) and [w for w, _ in d.updates] == [c2]


def test_diff_waits_for_a_deleting_work() -> None:
    p = make()
    c1, _ = p.works
    deleting = existing(c1, deleting=True)
    d = diff.diff(p, [deleting, diff.ExistingWork("x", "c9", "gone-1", deleting=True)])
    assert [w.cluster for w in d.creates] == ["c2"]
    assert deleting in d.held and d.deletes == ()
    assert "still being deleted" in d.notes[0]


POLICIES = [
    ("sync", 1, 1),
    ("create-only", 0, 0),
    ("create-update", 1, 0),
    ("create-delete", 0, 1),
]


@pytest.mark.parametrize(("policy", "updates", "deletes"), POLICIES, ids=[c[0] for c in POLICIES])
def test_diff_respects_applications_sync(policy: str, updates: int, deletes: int) -> None:
    p = make(syncPolicy={"applicationsSync": policy})
    c1, _ = p.works
    d = diff.diff(p, [existing(c1, hash_="outdated"), stale()], existing_mirrors=["gone"])
    assert len(d.creates) == 1  # creates are always allowed
    assert (len(d.updates), len(d.deletes), len(d.mirror_deletes)) == (updates, deletes, deletes)
    assert len(d.notes) == (1 - updates) + (1 - deletes)


def test_diff_holds_everything_when_a_target_cannot_be_identified() -> None:
    template = copy.deepcopy(GO_TEMPLATE)
    template["metadata"]["name"] = "{{ .name }}-{{ sha256sum .name }}"
    p = make(template=template, params=[{"name": "c1"}], go_template=True)
    old = stale()
    d = diff.diff(p, [old], existing_mirrors=["c1-guestbook"])
    assert d.deletes == () and d.held == (old,) and d.mirror_deletes == ()
    assert "no works deleted: 1 parameter set(s) failed to render" in d.notes[0]


def test_diff_holds_the_work_of_a_target_whose_cluster_is_unknown() -> None:
    p = make(params=[{"name": "c1"}, {"name": "c9"}])
    held = diff.ExistingWork(
        "h", "c9", identities.work_name("apps", "guestbook", "c9", "c9-guestbook"), spec_hash="x"
    )
    other = stale()
    d = diff.diff(p, [held, other], existing_mirrors=["c9-guestbook", "old-app"])
    assert d.held == (held,)
    assert d.deletes == (other,)
    assert d.mirror_deletes == ("old-app",)
