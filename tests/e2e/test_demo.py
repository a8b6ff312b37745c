"""`fleetplane demo`, the journey `make demo` shows a new user, run as they run it — and stopped
the ways they stop it.

The first demo is killed -9 while it holds (no `pulumi destroy`); the documented recovery,
`fleetplane local down --env pulumi-<stack>`, stops what it left and forgets its stack. The next
demo then runs `pulumi up` on the bootstrap project's stack (the management cluster, PostgreSQL,
Kafka, the Maestro server, the provisioner and the hub controllers), applies two cluster claims
and waits until both are Ready (each a cluster with Argo CD and a Maestro agent, started by the
provisioner), plays the three ApplicationSet lifecycle cases, says each passed and holds. Its
output goes to a pipe, as in `make demo | tee demo.log`; the pipe's reader goes away and Ctrl-C
follows, as when `tee` dies with the Ctrl-C: the demo still runs `pulumi destroy` to the end
(its output kept in a log file), exits 0, and leaves no process alive, no state and no stack.
The processes are learnt by reading the environments' state files while the demos run (each is
recorded, by pid and start time, when it starts). While the second demo holds, the metrics it says
each process serves are scraped: the server counts the works published and the clusters
registered, each agent its applies, status reports and deletions, the controllers their passes,
works and status writes, the provisioner its two clusters Ready and its passes.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from localinfra import paths, process, pulumi_cli
from localinfra.environment import Environment

pytestmark = pytest.mark.e2e

DEMO_TIMEOUT = 840.0
PLATFORM = ("etcd", "hub/kube-apiserver", "maestro/server", "hub/provisioner", "hub/controllers")
CLI = Path(sys.executable).parent / "fleetplane"
HOLDING = "press Ctrl-C to run `pulumi destroy`"
#: how the demo tells where a process serves its metrics: ``curl URL   # metrics of NAME``
METRICS = re.compile(r"curl (http://\S+/metrics)\s+# metrics of (\S+)")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=5) as reply:
        text = reply.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    return sum(v for (n, found), v in samples.items() if n == name and labels.items() <= dict(found).items())


def recorded(root: Path) -> list[process.ProcessRecord]:
    """The processes the environments' state files list now (none once destroyed)."""
    with contextlib.suppress(OSError, ValueError):
        return Environment(root).all_processes()
    return []


class Demo:
    """`fleetplane demo --stack STACK` with its output on a pipe this test reads until the demo
    says it holds, then stops reading and closes its end (as a `tee` killed by Ctrl-C does)."""

    def __init__(self, stack: str) -> None:
        self.root = Environment.named(f"pulumi-{stack}").root
        self.seen: dict[tuple[int, int], process.ProcessRecord] = {}
        self.lines: list[str] = []
        self.holding = threading.Event()
        self.child = subprocess.Popen(
            [str(CLI), "demo", "--stack", stack],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
            # Ctrl-C reaches it as from a terminal even when these tests run as a background job
            # (a shell without job control starts those with SIGINT ignored, and children inherit it)
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.child.stdout is not None
        for line in self.child.stdout:
            self.lines.append(line)
            if HOLDING in line:
                break
        self.holding.set()
        self.child.stdout.close()  # the reader is gone: later writes find a closed pipe

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_holding(self) -> None:
        deadline = time.monotonic() + DEMO_TIMEOUT
        while not self.holding.is_set():
            for record in recorded(self.root):
                self.seen[(record.pid, record.start_ticks)] = record
            assert time.monotonic() < deadline, f"the demo did not hold within {DEMO_TIMEOUT:.0f}s"
            time.sleep(0.5)
        assert HOLDING in self.text, f"the demo ended before it held:\n{self.text[-6000:]}"

    def assert_played(self) -> None:
        for case in (1, 2, 3):
            assert re.search(rf"case {case} passed in \d", self.text), f"case {case} not passed:\n{self.text}"
        assert "all three cases passed" in self.text
        assert re.search(r"2 clusters Ready in \d", self.text), self.text
        assert "Resources:\n    + 10 created" in self.text, self.text

    def assert_metrics_moved(self) -> None:
        """Scrape each process where the demo says it serves metrics: the counters a user would
        look at after the three cases have moved."""
        served = {name: url for url, name in METRICS.findall(self.text)}
        agents = [url for name, url in served.items() if name.endswith("/maestro-agent")]
        assert {"maestro/server", "hub/controllers", "hub/provisioner"} <= set(served), self.text[-3000:]
        assert len(agents) == 2, served

        server = scrape(served["maestro/server"])
        calls: dict[str, float] = {}  # calls answered OK, by method
        for (name, labels), value in server.items():
            found = dict(labels)
            if name == "maestro_grpc_server_handled_total" and found["code"] == "OK":
                method = found["method"].rsplit("/", 1)[1]
                calls[method] = calls.get(method, 0) + value
        assert calls.get("PublishBatch", 0) + calls.get("Publish", 0) >= 1, calls
        assert calls.get("CreateConsumer", 0) >= 2, calls
        for url in agents:
            agent = scrape(url)
            assert total(agent, "maestro_agent_applies_total", outcome="applied") >= 1, (url, agent)
            assert total(agent, "maestro_agent_status_reports_total") >= 1, (url, agent)
            assert total(agent, "maestro_agent_deletions_total") >= 1, (url, agent)
        controllers = scrape(served["hub/controllers"])
        changed = {"kind": "ApplicationSet", "outcome": "changed"}
        assert total(controllers, "fleetplane_controllers_reconciles_total", **changed) >= 1, controllers
        for name in ("works_published", "works_deleted", "status_updates"):
            assert total(controllers, f"fleetplane_controllers_{name}_total") >= 1, (name, controllers)
        assert total(controllers, "fleetplane_controllers_status_writes_total", outcome="written") >= 1
        provisioner = scrape(served["hub/provisioner"])
        assert total(provisioner, "fleetplane_provisioner_clusters", state="ready") == 2, provisioner
        for kind in ("composite", "claim"):
            done = {"kind": kind, "operation": "reconcile", "outcome": "done"}
            assert total(provisioner, "fleetplane_provisioner_reconciles_total", **done) >= 2, (
                kind,
                provisioner,
            )


def test_demo_plays_the_three_cases_survives_kill_9_and_cleans_up_without_its_terminal() -> None:
    stack = f"e2e-demo-{os.getpid()}"
    bootstrap = pulumi_cli.Stack(stack)
    destroy_log = paths.cache_root() / "logs" / f"demo-destroy-{stack}.log"
    first = second = None
    try:
        first = Demo(stack)
        first.wait_holding()
        first.assert_played()
        first.child.kill()  # -9: no pulumi destroy
        first.child.wait(timeout=30)
        left = [r.name for r in first.seen.values() if process.is_alive(r)]
        assert set(PLATFORM) <= set(left), f"the killed demo's platform is not running: {left}"

        down = [str(CLI), "local", "down", "--env", f"pulumi-{stack}"]
        recovery = subprocess.run(down, capture_output=True, text=True, check=False)
        assert recovery.returncode == 0, recovery.stderr
        assert not [r.name for r in first.seen.values() if process.is_alive(r)]
        assert not bootstrap.exists()

        second = Demo(stack)
        second.wait_holding()
        second.assert_played()
        second.assert_metrics_moved()
        second.child.send_signal(signal.SIGINT)
        second.child.wait(timeout=300)
    finally:
        for demo in (first, second):
            if demo is not None and demo.child.poll() is None:
                demo.child.kill()
        leftover = Environment.named(f"pulumi-{stack}")
        left_in_state = sorted(r.name for r in leftover.all_processes())
        if left_in_state or leftover.root.exists():
            leftover.down()  # leave the machine clean; reported below
        still_listed = bootstrap.exists()
        if still_listed:
            bootstrap.remove()
    assert second.child.returncode == 0, f"the demo exited with {second.child.returncode}"
    destroyed = destroy_log.read_text()
    destroy_log.unlink()
    assert "- 10 deleted" in destroyed, destroyed
    assert not left_in_state, f"the demo's state still lists processes: {left_in_state}"
    names = {r.name for r in second.seen.values()}
    assert set(PLATFORM) <= names, f"platform processes not recorded: {sorted(names)}"
    # The provisioner's clusters: a kube-apiserver, Argo CD and a Maestro agent each.
    assert len([n for n in names if n.endswith("/maestro-agent")]) == 2, sorted(names)
    alive = sorted(f"{r.name} (pid {r.pid})" for r in second.seen.values() if process.is_alive(r))
    assert not alive, f"still running after the demo: {alive}"
    assert not second.root.exists(), f"{second.root} left behind"
    assert not still_listed, "the stack is still listed"
