"""The benchmarks as a user runs them, at a small scale: each starts what it needs, finishes, and
prints figures that add up (every work created, applied and its status seen; nothing read by an
agent that was not its own; `--compare` runs both the secure and the plaintext pipeline and prices
the difference). `--report DIR` writes the same figures with what the run counted each second, and
PNG charts of it. Their speed is not asserted here: the figures are the output.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from localinfra import upstream_maestro
from tests.e2e.conftest import fleetplane

pytestmark = pytest.mark.e2e


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_bench(*args: str) -> tuple[dict[str, Any], str]:
    """``fleetplane bench ... --json``: its figures, and what it printed on stderr on the way."""
    out = fleetplane("bench", *args, "--json")
    assert "Connection refused" not in out.stderr  # Kafka clients closed before the broker stopped
    return json.loads(out.stdout), out.stderr


def read_report(folder: Path, name: str, figures: dict[str, Any]) -> dict[str, Any]:
    """The ``--report`` folder's JSON, holding the figures printed; its charts valid PNGs of some
    substance; the run's one timeline returned."""
    report = json.loads((folder / f"{name}.json").read_text())
    assert report["figures"] == figures
    assert report["charts"] == [f"{name}-throughput.png", f"{name}-latency.png"]
    for chart in report["charts"]:
        data = (folder / chart).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5_000, (chart, len(data))
    timeline: dict[str, Any] = report["timelines"][name]
    return timeline


def test_bench_pipeline_with_two_server_replicas(tmp_path: Path) -> None:
    figures, progress = run_bench(
        "pipeline", "--clusters", "3", "--works-per-cluster", "40", "--server-replicas", "2",
        "--paced-rate", "20", "--paced-seconds", "1", "--batch-publish", "--report", str(tmp_path),
    )  # fmt: skip

    assert (figures["total"], figures["server_replicas"], figures["batch_publish"]) == (120, 2, True)
    assert figures["creates_per_s"] > 0 and figures["end_to_end_seconds"] > 0
    # every bulk and paced work is listed back over gRPC
    assert figures["listed"] == 120 + 20
    assert figures["foreign_events_read"] == 0
    assert 0 < figures["agent_bytes_max"] < figures["spec_bytes_total"]
    assert figures["server_peak_rss_mb"] >= figures["server_rss_mb"] > 0
    assert "2 server replica(s) up" in progress
    assert "logs kept" not in progress  # a run that went well leaves nothing behind

    # each work once in the per-second counts and latencies: every one sent and applied; the bulk's
    # statuses all stored (the paced phase waits for applies alone)
    timeline = read_report(tmp_path, "pipeline", figures)
    assert list(timeline["phases"]) == ["bulk", "paced", "list"]
    rates, latencies = timeline["rates"], timeline["latencies"]
    assert sum(p["per_s"] for p in rates["sent"]) == sum(p["per_s"] for p in rates["applied"]) == 140
    assert 120 <= sum(p["per_s"] for p in rates["status stored"]) <= 140
    assert sum(p["count"] for p in latencies["create -> applied"]) == 140
    assert 120 <= sum(p["count"] for p in latencies["applied -> status"]) <= 140
    assert all(0 < p["p50_ms"] <= p["p99_ms"] for points in latencies.values() for p in points)


def test_bench_publish_one_event_per_call_side_by_side_when_upstream_is_built() -> None:
    """Upstream's server and the driver of its clients come from the cache when built (``python -m
    localinfra.upstream_maestro``); without them fleetplane alone runs, under its own client."""
    figures, progress = run_bench(
        "publish", "--publishes", "20", "--concurrency", "1", "--concurrency", "2", "--warmup", "4",
        "--list-bundles", "60",
    )  # fmt: skip
    levels = figures["levels"]
    servers = {level["server"] for level in levels}
    assert [lv["concurrency"] for lv in levels if lv["server"] == "fleetplane"] == [1, 2]
    for level in levels:
        assert level["errors"] == 0 and level["creates_per_s"] > 0, level
        assert 0 < level["p50_ms"] <= level["p99_ms"], level
    assert all(figures["server_rss_mb"][server] > 0 for server in servers)
    if upstream_maestro.binary().is_file():
        assert figures["listed"] == dict.fromkeys(servers, 60)
    else:
        assert figures["listed"] == {} and "no list timed" in progress
    if upstream_maestro.server_binary().is_file():
        assert servers == {"fleetplane", "upstream"} and set(figures["ratios"]) == {"1", "2"}
        # secure by default, both: upstream with mutual TLS and its per-call authorizer
        assert any("--grpc-authn-type=mtls" in note for note in figures["notes"])
    else:
        assert servers == {"fleetplane"} and "upstream Maestro not run" in progress
    assert "logs kept" not in progress


def test_bench_pipeline_compare_prices_security() -> None:
    """Secure and --insecure rounds in one command, each mode's rates and their ratio."""
    figures, progress = run_bench(
        "pipeline", "--clusters", "2", "--works-per-cluster", "20",
        "--paced-rate", "20", "--paced-seconds", "1", "--compare",
    )  # fmt: skip
    assert figures["rounds"] == 1
    for rate in ("creates_per_s", "end_to_end_per_s"):
        assert figures[rate]["secure"] > 0 and figures[rate]["insecure"] > 0
        # the shown rates are rounded to 0.1/s; the ratio is of the runs' own rates
        (secure_run,), (insecure_run,) = figures["secure_runs"], figures["insecure_runs"]
        secure, insecure = secure_run[rate], insecure_run[rate]
        assert figures[rate]["ratio"] == pytest.approx(secure / insecure, abs=0.001)
    assert [run["insecure"] for run in figures["secure_runs"] + figures["insecure_runs"]] == [False, True]
    assert "TLS, client certificates, ACLs" in progress and "plaintext, no authorization" in progress


def test_bench_fleet_create_update_delete(tmp_path: Path) -> None:
    figures, _ = run_bench(
        "fleet", "--clusters", "3", "--apps-per-cluster", "2", "--write-concurrency", "4",
        "--argocd-sync-delay", "0.2", "--phase-timeout", "300", "--report", str(tmp_path),
    )  # fmt: skip

    assert figures["total"] == 6
    assert figures["create_reached"] == {"works": 6, "hub_apps": 6, "synced_healthy": 6, "at_new_revision": 0}
    assert (
        figures["update_reached"]["works_new_template"] == figures["update_reached"]["at_new_revision"] == 6
    )
    assert (figures["delete_reached"]["works"], figures["delete_reached"]["hub_apps"]) == (0, 0)
    # the controllers create the mirrors by POST and replace them by PUT at the new template; the
    # benchmark creates its inventory Secrets (POSTs too)
    writes = figures["hub_writes_by_verb"]
    assert writes["create"] >= 6 + 3 and writes["update"] >= 6 and writes["delete"] >= 6, writes
    assert figures["peak_rss_mb"]["hub/kube-apiserver"] > 0
    # each phase's CPU, for every process the benchmark started: the hub worked in every phase
    for phase in ("create", "update", "delete"):
        used = figures["cpu_seconds"][phase]
        assert {"hub/kube-apiserver", "postgres", "kafka", "maestro-server", "controllers"} <= used.keys()
        assert used["hub/kube-apiserver"] > 0 and used["all"] >= used["hub/kube-apiserver"]
        assert figures["cpu_ms_per_application"][phase].keys() == used.keys()
    # the create phase's CPU by stretches of Applications finished, from none to all six
    stretches = figures["create_cpu_ms_by_progress"]
    assert stretches and next(iter(stretches)).startswith("0-") and list(stretches)[-1].endswith("-6")
    assert all(per_app["all"] > 0 for per_app in stretches.values())
    assert figures["notes"] == [] and figures["skipped_phases"] == []

    # every phase's rates from the samples, and each new mirror's trip to Synced/Healthy
    timeline = read_report(tmp_path, "fleet", figures)
    assert list(timeline["phases"]) == ["create", "update", "delete"]
    assert sum(p["per_s"] > 0 for p in timeline["rates"]["create: Applications Synced/Healthy"]) >= 1
    assert sum(p["per_s"] > 0 for p in timeline["rates"]["delete: Applications removed"]) >= 1
    trips = timeline["latencies"]["hub mirror written -> Synced/Healthy"]
    assert sum(p["count"] for p in trips) >= 6


def test_bench_fleet_compare_prices_security() -> None:
    """`bench fleet --compare`: a secure and a plaintext fleet in one command, each phase's rate in
    Applications per second, and their ratio."""
    figures, progress = run_bench(
        "fleet", "--clusters", "2", "--apps-per-cluster", "2", "--argocd-sync-delay", "0.2",
        "--phases", "create,delete", "--phase-timeout", "300", "--compare",
    )  # fmt: skip
    (secure_run,), (insecure_run,) = figures["secure_runs"], figures["insecure_runs"]
    assert (secure_run["insecure"], insecure_run["insecure"]) == (False, True)
    for run in (secure_run, insecure_run):
        assert run["create_per_s"] == pytest.approx(run["total"] / run["create_seconds"], abs=0.1)
        assert run["update_per_s"] is None  # the phase was left out
    for rate in ("create_per_s", "delete_per_s"):
        secure, insecure = secure_run[rate], insecure_run[rate]
        assert figures[rate]["ratio"] == pytest.approx(secure / insecure, abs=0.001)
    assert "update_per_s" not in figures
    assert "round 1 of 1: secure, then --insecure" in progress


def test_bench_hub_times_each_write_mode_against_a_configmap_baseline() -> None:
    figures, progress = run_bench("hub", "--writes", "40", "--warmup", "5", "--concurrency", "8")

    assert (figures["writes"], figures["concurrency"]) == (40, 8)
    assert figures["mirror_bytes"] > 500  # the controllers' own mirror: labels, owner, spec, status
    # written as the controllers write in a hub, not as the admin (a certificate costs more per request)
    assert figures["writes_as"] == "system:serviceaccount:argocd:fleetplane-controllers"
    assert list(figures["modes"]) == [
        "mirror-apply", "mirror-reapply", "mirror-post", "mirror-put",
        "mirror-apply-then-status", "configmap-apply",
    ]  # fmt: skip
    for mode in figures["modes"].values():
        assert mode["writes"] == 40 and mode["writes_per_s"] > 0
        assert mode["cpu_ms_per_write"]["hub"] > 0 and mode["cpu_ms_per_write"]["client"] > 0
        assert mode["vs_configmap"] > 0
    assert figures["modes"]["configmap-apply"]["vs_configmap"] == 1.0
    assert "mirror-reapply: 45 writes" in progress
    assert "logs kept" not in progress


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            if int(stat[stat.rfind(")") + 2 :].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return (Path("/proc") / str(pid) / "stat").read_text().split(")")[-1].split()[0] != "Z"
    return False


def test_a_benchmark_stopped_with_sigterm_stops_what_it_started(tmp_path: Path) -> None:
    log = tmp_path / "bench.log"
    cli = Path(sys.executable).parent / "fleetplane"
    args = ["bench", "pipeline", "--clusters", "2", "--works-per-cluster", "50000"]
    with open(log, "wb") as out:
        bench = subprocess.Popen([str(cli), *args], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while b"creating" not in log.read_bytes():
            assert bench.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        started = _children(bench.pid)  # PostgreSQL, Kafka, the Maestro server
        assert len(started) >= 3

        bench.send_signal(signal.SIGTERM)
        bench.wait(timeout=120)
    finally:
        if bench.poll() is None:
            bench.kill()

    left = [pid for pid in started if _alive(pid)]
    for pid in left:  # never leave them to the next test
        os.kill(pid, signal.SIGKILL)
    assert bench.returncode != 0  # stopped, not finished
    assert left == []
    kept = re.search(r"logs kept in (\S+)", log.read_text())  # and the user is told where its logs are
    assert kept is not None
    logs = {p.name for p in Path(kept[1]).rglob("*.log") if p.stat().st_size}
    assert {"kafka.log", "postgres.log"} <= logs, logs  # the logs themselves, not an empty folder
    shutil.rmtree(kept[1])


def _descendants(pid: int) -> set[int]:
    """Its children, theirs, and so on (processes started in sessions of their own included)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        children = _children(todo.pop()) - found
        todo.extend(children)
        found |= children
    return found


def _cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


def _mentioning(text: str) -> set[int]:
    """The live processes whose command line names ``text``."""
    pids = {int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()}
    return {pid for pid in pids if text in _cmdline(pid) and _alive(pid)}


def test_ctrl_c_stops_bench_provision_and_every_process_it_started(tmp_path: Path) -> None:
    """Ctrl-C at a terminal (SIGINT to the foreground process group) while a cluster comes up: the
    run stops, with the provisioner and the local workers it started, and its folder goes."""
    log = tmp_path / "bench.log"
    cli = Path(sys.executable).parent / "fleetplane"
    with open(log, "wb") as out:
        bench = subprocess.Popen(
            [str(cli), "bench", "provision", "--clusters", "1"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a process group of its own, as a terminal's foreground job
            # Ctrl-C reaches a terminal's job even when this test's runner ignores SIGINT
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    try:
        deadline = time.monotonic() + 300

        def provisioner() -> int:
            return next((p for p in _children(bench.pid) if "provisioner run" in _cmdline(p)), 0)

        def worker_started() -> bool:
            """The provisioner has started the cluster's API server; the run waits for it."""
            running = provisioner()
            if not running or b"clusters Ready" not in log.read_bytes():
                return False
            return any("kube-apiserver" in _cmdline(p) for p in _descendants(running))

        while not worker_started():
            assert bench.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        argv = _cmdline(provisioner()).split()  # its --local-env is in the run's folder
        folder = Path(argv[argv.index("--local-env") + 1]).parent
        started = _descendants(bench.pid)

        os.killpg(bench.pid, signal.SIGINT)
        bench.wait(timeout=180)
    finally:
        if bench.poll() is None:  # failed: SIGTERM still stops what it started
            bench.terminate()
            try:
                bench.wait(timeout=120)
            except subprocess.TimeoutExpired:
                bench.kill()
    left = {pid: _cmdline(pid) for pid in {p for p in started if _alive(p)} | _mentioning(str(folder))}
    for pid in left:  # never leave them to the next test
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert bench.returncode != 0  # stopped, not finished
    assert left == {}
    assert not folder.exists()
    assert "Traceback" not in log.read_text()


def test_bench_provision_simulated_claims_ready_rolled_out_and_deleted() -> None:
    figures, progress = run_bench("provision", "--simulated", "--claims", "20", "--timeout", "900")
    assert figures["claims"] == 20
    # every claim Ready, the Composition change on all of them, all deleted with nothing left over
    assert figures["notes"] == []
    for step in ("seconds_to_all_ready", "seconds_to_roll_out", "seconds_to_all_deleted"):
        assert figures[step] is not None and figures[step] > 0, step
    assert figures["provisioner_cpu_seconds"] > 0
    assert "20/20 clusters Ready" in progress
    assert "20/20 inventory entries relabelled" in progress


def test_bench_provision_compares_untuned_and_tuned_local_workers() -> None:
    figures, progress = run_bench(
        "provision", "--compare-tuning", "--untuned-clusters", "1", "--clusters", "1", "--timeout", "900"
    )
    components = {
        "kube-apiserver", "kube-controller-manager", "maestro-agent",
        "argocd-application-controller", "argocd-repo-server", "argocd-redis",
    }  # fmt: skip
    for run, clusters in (("untuned", 1), ("tuned", 1)):
        measured = figures[run]
        assert (measured["tuning"], measured["clusters"], measured["notes"]) == (run, clusters, [])
        for step in ("first_ready_seconds", "seconds_to_all_ready", "seconds_to_all_deleted"):
            assert measured[step] is not None and measured[step] > 0, (run, step)
        # every process of every cluster measured; a page shared with another process counts in
        # part, so PSS is at most RSS
        assert set(measured["pss_mb_per_component"]) == set(measured["rss_mb_per_component"]) == components
        assert 0 < measured["pss_mb_per_cluster"] <= measured["rss_mb_per_cluster"]
        assert measured["pss_mb_all_clusters"] >= measured["pss_mb_per_cluster"] * clusters * 0.99
        assert measured["machine_available_mb"] > 0
    assert figures["tuned_vs_untuned_pss_per_cluster"] > 0
    assert progress.count("1/1 clusters Ready") >= 2


def test_bench_soak_samples_every_process_and_reports_their_trends(tmp_path: Path) -> None:
    figures, progress = run_bench(
        "soak", "--minutes", "1", "--clusters", "2", "--works", "20", "--rate", "5",
        "--interval", "10", "--report", str(tmp_path),
    )  # fmt: skip

    # every kind of operation went out, none failed, and the works stayed about their target
    assert set(figures["operations sent"]) == {"create", "update", "delete", "status"}
    assert figures["operations failed"] == "none"
    assert 10 <= figures["works alive at the end"] <= 30
    # each component sampled throughout, with its trend; a progress line per sample
    trends = figures["trends (last two thirds)"]
    for component in ("maestro-server", "postgres", "kafka", "bench (load, agents)"):
        memory = trends[f"memory: {component}"]
        assert memory["first"] > 0 and memory["growth %"] != "-", component
        assert trends[f"descriptors: {component}"]["last"] > 0, component
    assert trends["connections: maestro-server"]["last"] > 0
    assert {"backlog: outbox", "backlog: status ingest lag", "backlog: agent spec lag"} <= set(trends)
    assert progress.count("/1 min: sent") >= 6
    report = json.loads((tmp_path / "soak.json").read_text())
    assert report["figures"] == figures
    panels = ("memory", "descriptors", "connections", "backlog")
    assert report["charts"] == [f"soak-{panel}.png" for panel in panels]
    for chart in report["charts"]:
        data = (tmp_path / chart).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5_000, chart


def test_bench_chaos_strikes_each_fault_and_the_outcome_is_exact() -> None:
    figures, progress = run_bench(
        "chaos", "--works", "100", "--agents", "2", "--brokers", "1",
        "--faults", "maestro-replica,agent-kafka-cut,controllers-leader",
    )  # fmt: skip

    assert figures["works per rollout"] == 100
    struck = figures["faults"]
    assert list(struck) == ["maestro-replica", "agent-kafka-cut", "controllers-leader"]
    for name, row in struck.items():
        assert row["verdict"] == "exact", (name, row)
        assert row["fault to recovered s"] > 0 and row["last call to exact s"] is not None, (name, row)
    for name in ("maestro-replica", "agent-kafka-cut"):
        # every work created, every third updated, every fifth deleted; each a third of the way in
        row = struck[name]
        assert row["calls"] == 100 + 34 + 20 and row["struck after calls"] >= 51, (name, row)
    assert progress.count(": struck after ") == 2 and progress.count("waiting for the exact outcome") == 2
    # the replica's death made a source send calls again, as a source does
    assert struck["maestro-replica"]["retried calls"] > 0
    # 50 ApplicationSets on the two clusters, a third of their works in Maestro at the kill; the
    # standby took the Lease over before the outcome was exact
    leader = struck["controllers-leader"]
    assert leader["workload"] == "50 ApplicationSets x 2 clusters", leader
    assert int(leader["struck with"].split("/")[0]) >= 33, leader
    assert leader["fault to exact s"] >= leader["fault to recovered s"], leader
