"""The fleet benchmark's pure parts: what it writes to the hub and how it reads its figures back.

Cases: a cluster Secret is an Argo CD cluster Secret the benchmark's generator selects; an
ApplicationSet opts in to the pull model and selects those Secrets, its revision is a parameter;
hub writes are summed by verb over resources and codes, reads ignored; VmHWM is read in MB;
Applications are counted as Synced+Healthy only with both, and as moved only at a revision other
than the one recorded for them (a missing revision is counted apart, never as moved); works are
counted at the revision their agent last applied, each once however often it was applied.
"""

from __future__ import annotations

import base64
import os

import pytest

from benchmarks.fleet import cpu, hub_cluster, report, sampler, workload
from controllers import contract


def test_cluster_secret_is_selected_by_the_generator() -> None:
    secret = workload.cluster_secret("cluster-00007")
    labels = secret["metadata"]["labels"]
    assert labels["argocd.argoproj.io/secret-type"] == "cluster"
    selector = workload.application_set(0)["spec"]["generators"][0]["clusters"]["selector"]
    assert selector["matchLabels"].items() <= labels.items()
    assert base64.b64decode(secret["data"]["name"]).decode() == "cluster-00007"
    assert secret["metadata"]["namespace"] == workload.NAMESPACE


def test_application_set_opts_in_and_carries_the_revision() -> None:
    appset = workload.application_set(3, "v2")
    assert appset["metadata"]["labels"] == {contract.PULL_LABEL: contract.PULL_LABEL_VALUE}
    assert appset["metadata"]["name"] == "guestbook-003"
    template = appset["spec"]["template"]
    assert template["metadata"]["name"] == "{{name}}-guestbook-003"
    assert template["spec"]["source"]["targetRevision"] == "v2"
    assert template["spec"]["destination"]["name"] == "{{name}}"


def test_write_counts_sum_write_verbs_only() -> None:
    text = "\n".join(
        [
            "# HELP apiserver_request_total Counter of apiserver requests",
            'apiserver_request_total{code="201",component="apiserver",resource="secrets",verb="POST"} 3',
            'apiserver_request_total{code="201",resource="applications",verb="POST"} 10',
            'apiserver_request_total{code="409",resource="applications",verb="POST"} 2',
            'apiserver_request_total{code="200",resource="applications",verb="PUT"} 7',
            'apiserver_request_total{code="200",resource="applications",verb="PATCH"} 4.0',
            'apiserver_request_total{code="200",resource="applications",verb="APPLY"} 1e+01',
            'apiserver_request_total{code="200",resource="applications",verb="LIST"} 99',
            'apiserver_request_total{code="200",resource="applications",verb="DELETE"} 5',
            'apiserver_request_duration_seconds_count{verb="POST"} 1000',
        ]
    )
    assert hub_cluster.write_counts(text) == {"create": 15, "update": 7, "patch": 4, "apply": 10, "delete": 5}
    assert hub_cluster.write_counts(text, "secrets") == {"create": 3}


def test_vm_hwm_in_mb() -> None:
    assert report.vm_hwm_mb("Name:\tx\nVmHWM:\t  204800 kB\nVmRSS:\t1 kB\n") == 200.0
    assert report.vm_hwm_mb("Name:\tx\n") == 0.0


def test_phase_cpu_per_process_and_per_application() -> None:
    before = {"hub/kube-apiserver": 10.0, "kafka": 5.0, "controllers": 1.0}
    after = {"hub/kube-apiserver": 40.0, "kafka": 11.0, "maestro-server": 3.0}  # controllers gone
    seconds, per_app = cpu.phase_cpu(before, after, 3000)
    assert seconds == {"hub/kube-apiserver": 30.0, "kafka": 6.0, "all": 36.0}
    assert per_app == {"hub/kube-apiserver": 10.0, "kafka": 2.0, "all": 12.0}


def _app(name: str, sync: str, health: str, revision: str = "") -> dict:
    return {
        "metadata": {"namespace": "argocd", "name": name},
        "status": {"sync": {"status": sync, "revision": revision}, "health": {"status": health}},
    }


def test_count_apps() -> None:
    apps = [
        _app("a", "Synced", "Healthy", "r1"),
        _app("b", "Synced", "Healthy", "r2"),
        _app("c", "OutOfSync", "Healthy", "r2"),
        _app("d", "Synced", "Progressing", "r2"),
        _app("e", "Synced", "Healthy"),
        {"metadata": {"namespace": "argocd", "name": "f"}},
    ]
    summaries = {sampler.app_key(app): sampler.summarize(app) for app in apps}
    assert sampler.count_apps(summaries) == {"apps": 6, "ready": 3, "moved": 0, "no_revision": 1}
    old = {"argocd/a": "r1", "argocd/b": "r1", "argocd/c": "r1", "argocd/e": "r0"}
    assert sampler.count_apps(summaries, old)["moved"] == 1


def test_hub_apps_follow_a_list_then_each_change() -> None:
    apps = sampler.HubApps(rest=None)  # type: ignore[arg-type]
    apps._listed([_app("a", "Synced", "Healthy", "r1"), _app("b", "Unknown", "Missing")])
    apps._changed("MODIFIED", _app("b", "Synced", "Healthy", "r1"))
    apps._changed("ADDED", _app("c", "OutOfSync", "Healthy"))
    apps._changed("DELETED", _app("a", "Synced", "Healthy", "r1"))
    assert apps.listed.is_set()
    assert apps.counts() == {"apps": 2, "ready": 1, "moved": 0, "no_revision": 0}
    assert apps.revisions() == {"argocd/b": "r1", "argocd/c": ""}


def test_hub_apps_keep_their_counts_through_a_template_change() -> None:
    apps = sampler.HubApps(rest=None)  # type: ignore[arg-type]
    apps._listed([_app(n, "Synced", "Healthy", "r1") for n in "abc"] + [_app("d", "Unknown", "Missing")])
    apps.compare_with(apps.revisions())
    assert apps.counts() == {"apps": 4, "ready": 3, "moved": 0, "no_revision": 0}
    apps._changed("MODIFIED", _app("a", "Synced", "Healthy", "r2"))
    apps._changed("MODIFIED", _app("b", "OutOfSync", "Healthy", "r1"))
    apps._changed("MODIFIED", _app("d", "Synced", "Healthy", "r2"))
    apps._changed("ADDED", _app("e", "Synced", "Healthy"))
    apps._changed("MODIFIED", _app("a", "Synced", "Healthy", "r2"))  # the same again
    apps._changed("DELETED", _app("c", "Synced", "Healthy", "r1"))
    assert apps.counts() == {"apps": 4, "ready": 3, "moved": 2, "no_revision": 1}
    assert apps.counts() == sampler.count_apps(apps.apps, apps.old_revisions)


def _bundle(revision: str) -> dict[str, object]:
    application = {"kind": "Application", "spec": {"source": {"targetRevision": revision}}}
    return {"manifests": [application]}


def test_applied_revisions_count_each_work_at_what_its_agent_last_applied() -> None:
    applied = sampler.AppliedRevisions()
    old, new = workload.REVISIONS
    for rid in ("w1", "w2", "w3"):
        applied.applied(rid, _bundle(old), 1.0)
    applied.applied("w1", _bundle(new), 2.0)
    applied.applied("w1", _bundle(new), 3.0)  # delivered again
    applied.applied("w2", _bundle(new), 3.0)
    applied.applied("w4", {"manifests": []}, 3.0)  # no Application in it: counted at no revision
    assert (applied.count(old), applied.count(new)) == (1, 2)
    assert workload.target_revision(_bundle(new)) == new
    assert workload.target_revision({"manifests": []}) is None


def test_phases_must_include_create_and_name_only_known_phases() -> None:
    assert workload.parse_phases("create") == {"create"}
    assert workload.parse_phases(" create, delete ") == {"create", "delete"}
    for bad in ("update", "create,destroy", ""):
        with pytest.raises(ValueError, match="--phases"):
            workload.parse_phases(bad)


def test_hub_go_runtime_collects_less_often_under_a_memory_limit() -> None:
    runtime = hub_cluster.hub_go_runtime(memory_share=0.25)

    assert runtime["GOGC"] == "400"
    limit = runtime["GOMEMLIMIT"]
    assert limit.endswith("MiB")  # a unit Go's runtime accepts
    total_mib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    assert abs(int(limit.removesuffix("MiB")) - total_mib / 4) <= 1


def test_progress_cpu_per_application_in_each_tenth() -> None:
    progress = cpu.ProgressCpu(1000, {"maestro": 0.0}, parts=4)
    assert not progress.due(249)
    assert progress.due(250)
    progress.add(250, {"maestro": 1.0})
    assert not progress.due(260)
    progress.add(500, {"maestro": 3.0})  # it grows: 4 ms per Application after 8 ms
    progress.add(500, {"maestro": 3.5})  # no more finished: left out
    assert progress.due(999)
    progress.add(1000, {"maestro": 8.0, "late": 1.0})  # a process seen only at the end is left out
    assert progress.per_application() == {
        "0-250": {"maestro": 4.0, "all": 4.0},
        "250-500": {"maestro": 8.0, "all": 8.0},
        "500-1000": {"maestro": 10.0, "all": 10.0},
    }
    assert not progress.due(1000)  # every reading taken: none more at the end
