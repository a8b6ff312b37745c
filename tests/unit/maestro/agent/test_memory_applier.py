"""The apply/prune/delete rules (`bundle_applier`) exercised through `MemoryApplier`.

Cases: SSA creates then updates, marking and recording what it owns; each update strategy on an
absent and on a pre-existing foreign object (what is written, what is owned); CreateOnly leaves a
changed object alone; Update keeps others' labels and the object's status; an update that drops
a manifest deletes exactly that object, or leaves it (unmarked) when orphaned; delete with
Foreground / Orphan / SelectivelyOrphan, with the option from the record when the delete carries
none; a restart (new applier, same cluster) loads the records and deletes what they list; an
object re-created by someone else under the same name survives; stale versions are ignored;
a failed write fails only its manifest and the version is claimed only when all applied; a
malformed manifest blocks pruning; a duplicate or namespace-less manifest fails with a clear
message; Argo CD Applications turn Synced/Healthy after the configured delay and their status
feedback flows into the bundle status, also after a restart; reads of an unchanged object share
one copy and see every change (a removed label too).
"""

from __future__ import annotations

from typing import Any

import pytest

from maestro.agent import bundle_status
from maestro.agent.applier import Applier
from maestro.agent.errors import ClusterError
from maestro.agent.kube import KubeApplier
from maestro.agent.manifests import MARKER_LABEL, ObjectRef
from maestro.agent.memory import MemoryApplier, MemoryBackend

RID = "0b6a8e2e-3c1a-4c55-9a55-1c0d3b2f6a10"
NS = "team"


def cm(name: str, data: dict[str, str] | None = None, ns: str = NS) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns},
        "data": data or {},
    }


def deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}},
    }


def application(name: str, revision: str = "HEAD") -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd"},
        "spec": {
            "project": "default",
            "source": {"repoURL": "file:///repo", "path": "guestbook", "targetRevision": revision},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "guestbook"},
        },
    }


def config(
    resource: str, name: str, strategy: str | None = None, *, group: str = "", ns: str = NS, **extra: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceIdentifier": {"group": group, "resource": resource, "namespace": ns, "name": name}
    }
    if strategy:
        out["updateStrategy"] = {"type": strategy}
    return {**out, **extra}


def bundle(
    *manifests: dict[str, Any],
    configs: tuple[dict[str, Any], ...] = (),
    delete_option: dict[str, Any] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"manifests": list(manifests), "manifestConfigs": list(configs)}
    if delete_option is not None:
        out["deleteOption"] = delete_option
    return out


def stored(
    backend: MemoryBackend, name: str, resource: str = "configmaps", group: str = "", ns: str = NS
) -> dict[str, Any] | None:
    return backend.objects.get((group, resource, ns, name))


def marked(obj: dict[str, Any] | None) -> bool:
    return bool(obj and (obj["metadata"].get("labels") or {}).get(MARKER_LABEL) == RID)


@pytest.fixture
def applier() -> MemoryApplier:
    return MemoryApplier("cluster-1", argocd_sync_delay=0.0)


async def test_ssa_creates_then_updates_and_records(applier: MemoryApplier) -> None:
    result = await applier.apply(RID, 1, bundle(cm("a", {"k": "1"}), deployment("web")))
    assert result.ok and not result.stale
    assert [o.meta.describe() for o in result.outcomes] == ["ConfigMap team/a", "Deployment team/web"]
    assert all(o.owned and o.strategy == "ServerSideApply" for o in result.outcomes)
    first = stored(applier.backend, "a")
    assert first is not None and marked(first) and first["data"] == {"k": "1"}
    assert result.record is not None and result.record.version == 1
    assert {(r.resource, r.name, r.uid) for r in result.record.applied_resources} == {
        ("configmaps", "a", first["metadata"]["uid"]),
        ("deployments", "web", stored(applier.backend, "web", "deployments", "apps")["metadata"]["uid"]),  # type: ignore[index]
    }

    result = await applier.apply(RID, 2, bundle(cm("a", {"k": "2"}), deployment("web", 3)))
    assert result.ok and result.record is not None and result.record.version == 2
    second = stored(applier.backend, "a")
    assert second is not None and second["data"] == {"k": "2"}
    assert second["metadata"]["uid"] == first["metadata"]["uid"]
    assert stored(applier.backend, "web", "deployments", "apps")["spec"]["replicas"] == 3  # type: ignore[index]


STRATEGY_CASES = [
    # (id, strategy, pre-existing foreign object?, data afterwards (None: absent), owned, marked)
    ("ssa-absent", "ServerSideApply", False, {"k": "new"}, True, True),
    ("ssa-foreign", "ServerSideApply", True, {"k": "new", "theirs": "x"}, False, False),
    ("update-absent", "Update", False, {"k": "new"}, True, True),
    ("update-foreign", "Update", True, {"k": "new"}, False, False),
    ("create-only-absent", "CreateOnly", False, {"k": "new"}, True, True),
    ("create-only-foreign", "CreateOnly", True, {"k": "old", "theirs": "x"}, False, False),
    ("read-only-absent", "ReadOnly", False, None, False, False),
    ("read-only-foreign", "ReadOnly", True, {"k": "old", "theirs": "x"}, False, False),
]


@pytest.mark.parametrize(
    ("strategy", "foreign", "data", "owned", "is_marked"),
    [c[1:] for c in STRATEGY_CASES],
    ids=[c[0] for c in STRATEGY_CASES],
)
async def test_update_strategies(
    applier: MemoryApplier,
    strategy: str,
    foreign: bool,
    data: dict[str, str] | None,
    owned: bool,
    is_marked: bool,
) -> None:
    if foreign:
        applier.backend.put(
            {
                **cm("a", {"k": "old", "theirs": "x"}),
                "metadata": {"name": "a", "namespace": NS, "labels": {"owner": "them"}},
            }
        )
    result = await applier.apply(
        RID, 1, bundle(cm("a", {"k": "new"}), configs=(config("configmaps", "a", strategy),))
    )
    assert result.ok
    (outcome,) = result.outcomes
    assert outcome.strategy == strategy and outcome.owned is owned
    obj = stored(applier.backend, "a")
    assert (obj["data"] if obj else None) == data
    assert marked(obj) is is_marked
    if foreign:
        assert obj is not None and obj["metadata"]["labels"]["owner"] == "them"
    assert result.record is not None
    assert [r.name for r in result.record.applied_resources] == (["a"] if owned else [])
    assert outcome.live == (await applier.observe(RID))[0]


async def test_create_only_never_touches_its_object_again(applier: MemoryApplier) -> None:
    configs = (config("configmaps", "a", "CreateOnly"),)
    await applier.apply(RID, 1, bundle(cm("a", {"k": "1"}), configs=configs))
    applier.backend.objects[("", "configmaps", NS, "a")]["data"] = {"k": "changed"}
    result = await applier.apply(RID, 2, bundle(cm("a", {"k": "2"}), configs=configs))
    assert result.ok and result.outcomes[0].owned
    assert stored(applier.backend, "a")["data"] == {"k": "changed"}  # type: ignore[index]


async def test_update_keeps_others_labels_and_status(applier: MemoryApplier) -> None:
    configs = (config("applications", "gb", "Update", group="argoproj.io", ns="argocd"),)
    await applier.apply(RID, 1, bundle(application("gb"), configs=configs))
    live = applier.backend.objects[("argoproj.io", "applications", "argocd", "gb")]
    live["metadata"]["labels"]["team"] = "x"
    live["status"] = {"sync": {"status": "Synced"}}
    result = await applier.apply(RID, 2, bundle(application("gb", "v2"), configs=configs))
    assert result.ok
    live = applier.backend.objects[("argoproj.io", "applications", "argocd", "gb")]
    assert live["spec"]["source"]["targetRevision"] == "v2"
    assert live["metadata"]["labels"] == {"team": "x", MARKER_LABEL: RID}


@pytest.mark.parametrize(
    ("delete_option", "kept", "still_marked"),
    [(None, False, False), ({"propagationPolicy": "Orphan"}, True, False)],
    ids=["dropped-manifest-deleted", "dropped-manifest-orphaned"],
)
async def test_update_that_drops_a_manifest(
    applier: MemoryApplier, delete_option: dict[str, Any] | None, kept: bool, still_marked: bool
) -> None:
    await applier.apply(RID, 1, bundle(cm("a"), cm("b"), delete_option=delete_option))
    result = await applier.apply(RID, 2, bundle(cm("a"), delete_option=delete_option))
    assert result.ok
    assert [r.name for r in (result.orphaned if kept else result.pruned)] == ["b"]
    assert stored(applier.backend, "a") is not None
    assert (stored(applier.backend, "b") is not None) is kept
    assert marked(stored(applier.backend, "b")) is still_marked
    assert result.record is not None and [r.name for r in result.record.applied_resources] == ["a"]


ORPHAN_B = {
    "propagationPolicy": "SelectivelyOrphan",
    "selectivelyOrphans": {
        "orphaningRules": [{"group": "", "resource": "configmaps", "namespace": NS, "name": "b"}]
    },
}
DELETE_CASES = [
    # (id, deleteOption in the bundle, option passed to delete, objects left afterwards)
    ("foreground", {"propagationPolicy": "Foreground"}, None, set()),
    ("default-is-foreground", None, None, set()),
    ("orphan", {"propagationPolicy": "Orphan"}, None, {"a", "b"}),
    ("selectively-orphan", ORPHAN_B, None, {"b"}),
    (
        "delete-event-overrides-record",
        {"propagationPolicy": "Orphan"},
        {"deleteOption": {"propagationPolicy": "Foreground"}},
        set(),
    ),
]


@pytest.mark.parametrize(
    ("in_bundle", "in_delete", "left"), [c[1:] for c in DELETE_CASES], ids=[c[0] for c in DELETE_CASES]
)
async def test_delete_policies(
    applier: MemoryApplier, in_bundle: dict[str, Any] | None, in_delete: dict[str, Any] | None, left: set[str]
) -> None:
    await applier.apply(RID, 3, bundle(cm("a"), cm("b"), delete_option=in_bundle))
    result = await applier.delete(RID, in_delete)
    assert result.done and result.version == 3 and not result.errors
    assert {r.name for r in result.orphaned} == left
    assert {r.name for r in result.deleted} == {"a", "b"} - left
    assert {k[3] for k in applier.backend.objects} == left
    assert not any(marked(o) for o in applier.backend.objects.values())
    assert applier.record(RID) is None and applier.backend.records == {}
    again = await applier.delete(RID)
    assert again.done and again.deleted == ()


async def test_restart_loads_records_and_deletes_what_they_list(applier: MemoryApplier) -> None:
    await applier.apply(
        RID, 5, bundle(cm("a"), deployment("web"), delete_option={"propagationPolicy": "Foreground"})
    )
    applier.backend.put(cm("unrelated"))

    restarted = MemoryApplier("cluster-1", backend=applier.backend)
    records = await restarted.load_records()
    assert list(records) == [RID]
    assert records[RID].version == 5
    assert {r.name for r in records[RID].applied_resources} == {"a", "web"}
    assert await MemoryApplier("cluster-2", backend=applier.backend).load_records() == {}

    result = await restarted.delete(RID)
    assert result.done and {r.name for r in result.deleted} == {"a", "web"}
    assert set(applier.backend.objects) == {("", "configmaps", NS, "unrelated")}


async def test_object_recreated_by_someone_else_survives_delete(applier: MemoryApplier) -> None:
    await applier.apply(RID, 1, bundle(cm("a")))
    # Someone deletes ours and creates their own under the same name (without our marker).
    del applier.backend.objects[("", "configmaps", NS, "a")]
    theirs = applier.backend.put(cm("a", {"mine": "no"}))
    result = await applier.delete(RID)
    assert result.done
    assert stored(applier.backend, "a") is not None
    assert stored(applier.backend, "a")["metadata"]["uid"] == theirs["metadata"]["uid"]  # type: ignore[index]


async def test_stale_version_is_ignored(applier: MemoryApplier) -> None:
    await applier.apply(RID, 4, bundle(cm("a", {"v": "4"})))
    result = await applier.apply(RID, 3, bundle(cm("a", {"v": "3"})))
    assert result.stale and result.outcomes == ()
    assert stored(applier.backend, "a")["data"] == {"v": "4"}  # type: ignore[index]


async def test_failed_write_fails_its_manifest_and_holds_the_version(applier: MemoryApplier) -> None:
    applier.backend.write_errors[("", "configmaps", NS, "b")] = ClusterError(
        "admission webhook denied it", status=400
    )
    result = await applier.apply(RID, 1, bundle(cm("a"), cm("b")))
    assert not result.ok
    assert [o.applied for o in result.outcomes] == [True, False]
    assert result.outcomes[1].error == "ConfigMap team/b: admission webhook denied it"
    # Both listed (b may exist after a half-done write), but version 1 is not claimed yet.
    assert result.record is not None and result.record.version == 0
    assert [(r.name, bool(r.uid)) for r in result.record.applied_resources] == [("a", True), ("b", False)]
    report = bundle_status.apply_status(result)
    applied = report["conditions"][0]
    assert (applied["type"], applied["status"], applied["reason"]) == (
        "Applied",
        "False",
        "AppliedManifestWorkFailed",
    )
    assert "ConfigMap team/b: admission webhook denied it" in applied["message"]

    retried = await applier.apply(RID, 1, bundle(cm("a"), cm("b")))
    assert retried.ok and retried.record is not None and retried.record.version == 1
    assert all(r.uid for r in retried.record.applied_resources)


async def test_unidentifiable_manifest_blocks_pruning(applier: MemoryApplier) -> None:
    await applier.apply(RID, 1, bundle(cm("a"), cm("b")))
    broken = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": NS}}
    result = await applier.apply(RID, 2, bundle(cm("a"), broken))
    assert (
        result.outcomes[1].error
        == "manifest 1 (ConfigMap team/?): metadata.name is required (generateName is not supported)"
    )
    assert result.pruned == () and stored(applier.backend, "b") is not None
    assert result.errors and "not removing 1 objects dropped from the bundle" in result.errors[0]
    assert result.record is not None and {r.name for r in result.record.applied_resources} == {"a", "b"}


BAD_BUNDLES = [
    (
        "duplicate",
        [cm("a"), cm("a", {"x": "y"})],
        "ConfigMap team/a: the same object as manifest 0",
    ),
    (
        "namespace-missing",
        [cm("a"), {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}}],
        "ConfigMap b: metadata.namespace is required for the namespaced kind ConfigMap",
    ),
    (
        "bad-config",
        [cm("a"), cm("b")],
        "ConfigMap team/b: manifestConfigs[0].updateStrategy.type must be one of",
    ),
]


@pytest.mark.parametrize(
    ("manifests", "error"), [c[1:] for c in BAD_BUNDLES], ids=[c[0] for c in BAD_BUNDLES]
)
async def test_bad_manifest_fails_alone(
    applier: MemoryApplier, manifests: list[dict[str, Any]], error: str
) -> None:
    configs = ({**config("configmaps", "b"), "updateStrategy": {"type": "Sideways"}},)
    result = await applier.apply(RID, 1, bundle(*manifests, configs=configs))
    assert result.outcomes[0].applied
    assert not result.outcomes[1].applied
    assert (result.outcomes[1].error or "").startswith(error)


async def test_argocd_application_syncs_after_delay_and_feeds_status() -> None:
    now = [100.0]
    backend = MemoryBackend(argocd_sync_delay=5.0, clock=lambda: now[0])
    applier = MemoryApplier("cluster-1", backend=backend)
    configs = (
        config(
            "applications",
            "gb",
            group="argoproj.io",
            ns="argocd",
            feedbackRules=[{"type": "WellKnownStatus"}],
        ),
    )
    result = await applier.apply(RID, 1, bundle(application("gb"), configs=configs))
    assert result.ok
    values = bundle_status.apply_status(result)["resourceStatus"][0]["statusFeedback"]["values"]
    assert {v["name"]: v["fieldValue"]["string"] for v in values} == {
        "SyncStatus": "OutOfSync",
        "HealthStatus": "Missing",
    }

    now[0] += 5.0
    live = await applier.observe(RID)
    assert live[0] is not None and live[0]["status"]["sync"]["status"] == "Synced"
    record = applier.record(RID)
    assert record is not None
    report = bundle_status.build_status(
        1, bundle_status.refreshed(result.outcomes, record.manifests, live), record.manifest_configs
    )
    values = report["resourceStatus"][0]["statusFeedback"]["values"]
    got = {v["name"]: v["fieldValue"]["string"] for v in values}
    assert got["SyncStatus"] == "Synced" and got["HealthStatus"] == "Healthy"
    assert got["OperationPhase"] == "Succeeded" and len(got["Revision"]) == 40

    # After a restart nothing was applied in-process: the record and observe rebuild the status.
    restarted = MemoryApplier("cluster-1", backend=backend)
    record = (await restarted.load_records())[RID]
    rebuilt = bundle_status.build_status(
        record.version,
        bundle_status.observed_outcomes(record, await restarted.observe(RID)),
        record.manifest_configs,
    )
    assert bundle_status.status_hash(rebuilt) == bundle_status.status_hash(report)


async def test_spec_change_resyncs_the_application() -> None:
    now = [0.0]
    backend = MemoryBackend(argocd_sync_delay=1.0, clock=lambda: now[0])
    applier = MemoryApplier("c", backend=backend)
    await applier.apply(RID, 1, bundle(application("gb")))
    now[0] = 2.0
    first = (await applier.observe(RID))[0]
    await applier.apply(RID, 2, bundle(application("gb", "v2")))
    pending = (await applier.observe(RID))[0]
    now[0] = 4.0
    second = (await applier.observe(RID))[0]
    assert first and pending and second
    assert pending["status"]["sync"]["status"] == "OutOfSync"
    assert second["status"]["sync"]["status"] == "Synced"
    assert first["status"]["sync"]["revision"] != second["status"]["sync"]["revision"]


async def test_unknown_bundle_delete_is_done_and_observe_empty(applier: MemoryApplier) -> None:
    assert (await applier.delete("nope")).done
    assert await applier.observe("nope") == []


async def test_unreadable_manifest_configs_write_nothing(applier: MemoryApplier) -> None:
    result = await applier.apply(RID, 1, {"manifests": [cm("a")], "manifestConfigs": {"oops": True}})
    assert not result.ok
    assert result.outcomes[0].error == "ConfigMap team/a: manifestConfigs must be a list, got dict"
    assert applier.backend.objects == {}


async def test_reapplying_the_same_version_does_not_rewrite_the_record(
    applier: MemoryApplier, monkeypatch: pytest.MonkeyPatch
) -> None:
    await applier.apply(RID, 1, bundle(cm("a")))
    writes: list[str] = []
    original = applier.backend.put_record

    async def counting(obj: dict[str, Any]) -> None:
        writes.append(obj["metadata"]["name"])
        await original(obj)

    monkeypatch.setattr(applier.backend, "put_record", counting)
    assert (await applier.apply(RID, 1, bundle(cm("a")))).ok
    assert writes == []
    assert (await applier.apply(RID, 2, bundle(cm("a"), cm("b")))).ok
    assert writes == [RID, RID]  # listed before it is written, then confirmed with its uid


def test_both_appliers_satisfy_the_protocol() -> None:
    # Checked by mypy (structural typing); at run time only that the names exist.
    implementations: list[type[Applier]] = [MemoryApplier, KubeApplier]
    for cls in implementations:
        assert all(callable(getattr(cls, m)) for m in ("start", "apply", "delete", "observe", "load_records"))


async def test_reads_see_every_change_and_an_unchanged_object_is_copied_once() -> None:
    backend = MemoryBackend()
    labelled = cm("shared", {"k": "v1"})
    labelled["metadata"]["labels"] = {"team": "a"}
    stored = backend.put(labelled)
    ref = ObjectRef("", "v1", "configmaps", NS, "shared")
    first, second = await backend.get(ref), await backend.get(ref)
    assert first is not None and first is second  # readers of one version share one copy
    assert first is not backend.objects[ref.key]  # never the stored object itself
    await backend.remove_label(ref, "team", uid=stored["metadata"]["uid"])
    after = await backend.get(ref)
    assert after is not None and "team" not in after["metadata"]["labels"]
    assert first["metadata"]["labels"] == {"team": "a"}  # what an earlier reader holds is unchanged


async def test_an_object_the_agent_may_not_read_is_not_available_and_does_not_block_the_delete() -> None:
    class Forbidden(MemoryBackend):
        """A cluster whose RBAC keeps kube-system from the agent, reads and writes alike."""

        async def get(self, ref: ObjectRef) -> dict[str, Any] | None:
            if ref.namespace == "kube-system":
                raise ClusterError('configmaps "x" is forbidden (HTTP 403 Forbidden)', status=403)
            return await super().get(ref)

    backend = Forbidden()
    denied = ClusterError('configmaps "x" is forbidden (HTTP 403 Forbidden)', status=403)
    backend.write_errors[("", "configmaps", "kube-system", "x")] = denied
    agent = MemoryApplier("c1", backend=backend)
    first = await agent.apply(RID, 1, {"manifests": [cm("a")]})
    assert first.ok
    second = await agent.apply(RID, 2, {"manifests": [cm("a"), cm("x", ns="kube-system")]})
    assert [o.applied for o in second.outcomes] == [True, False]
    live = await agent.observe(RID)
    assert [obj is not None for obj in live] == [True, False]
    deleted = await agent.delete(RID)
    assert deleted.done, deleted.errors
