"""The demo's journey: the source document's three ApplicationSet cases on the local fleet.

``fleetplane demo`` (``fleetplane/local_cli.py``) calls ``play`` once ``localinfra.fleet.up``
returned. ``play`` starts the pull pipeline (``pipeline.start``), makes the local git repository
of the apps, then for each case writes the ApplicationSet a user would write, applies it with
kubectl (or deletes it), and waits - showing the hub's Applications live (``view``) - until the
hub and the workers show what the document says. Each wait is bounded; a timeout or a process
that died is an ``InfraError`` naming what was expected, what was last seen and where the logs are.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console, Group
from rich.live import Live
from rich.spinner import Spinner

from controllers import contract
from fleetplane.demo import pipeline
from fleetplane.demo.view import FleetView, Snapshot, render
from localinfra import fleet, gitrepo, kubectl, paths, process
from localinfra.environment import Environment
from localinfra.errors import InfraError
from localinfra.progress import Reporter, stderr_reporter, step

APPSET = "configmap1"
MISSING_REPO = "file:///nonexistent/fleetplane-demo/apps.git"
CASE_TIMEOUT = 240.0


@dataclass(frozen=True)
class Case:
    """One case: what the user does (``action``, shown), then what the demo waits for."""

    number: int
    title: str
    action: str
    expect: str
    passed: Callable[[Snapshot], bool]


def application_set(repo: str) -> dict[str, Any]:
    """The ApplicationSet of the cases: opted in to the pull model, one ``<cluster>-configmap1``
    Application per cluster labelled ``fleetplane.io/demo=true``, auto-synced from ``repo``."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {
            "name": APPSET,
            "namespace": pipeline.INVENTORY_NAMESPACE,
            "labels": {contract.PULL_LABEL: contract.PULL_LABEL_VALUE},
        },
        "spec": {
            "generators": [{"clusters": {"selector": {"matchLabels": dict(pipeline.CLUSTER_LABELS)}}}],
            "template": {
                "metadata": {"name": "{{name}}-configmap1"},
                "spec": {
                    "project": "default",
                    "source": {"repoURL": repo, "targetRevision": "HEAD", "path": "apps/configmap1"},
                    "destination": {"name": "{{name}}", "namespace": "default"},
                    "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
                },
            },
        },
    }


def cases(apps: list[str], manifest: Path, hub: Path) -> list[Case]:
    """The three cases for the hub Applications ``apps`` (one per worker), ``hub`` its kubeconfig."""
    kubectl_cmd = f"kubectl --kubeconfig {hub}"

    def unknown(s: Snapshot) -> bool:
        rows = [s.app(a) for a in apps]
        no_cm = not any(s.configmaps.values())
        return all(r is not None and r.sync == "Unknown" and r.error for r in rows) and no_cm

    def synced(s: Snapshot) -> bool:
        rows = [s.app(a) for a in apps]
        ok = all(r is not None and (r.sync, r.health) == ("Synced", "Healthy") for r in rows)
        return ok and bool(s.configmaps) and all(s.configmaps.values())

    def gone(s: Snapshot) -> bool:
        return (
            not s.error
            and not s.appset
            and not any(s.app(a) for a in apps)
            and not any(s.configmaps.values())
        )

    return [
        Case(
            1,
            "an ApplicationSet whose Git repository does not exist",
            f"{kubectl_cmd} apply -f {manifest}   (repoURL {MISSING_REPO})",
            f"{len(apps)} hub Applications with sync Unknown and the workers' error, no configmap1",
            unknown,
        ),
        Case(
            2,
            "the repoURL corrected",
            f"{kubectl_cmd} apply -f {manifest}   (repoURL: the local apps repository)",
            f"{len(apps)} hub Applications Synced and Healthy, configmap1 on every worker",
            synced,
        ),
        Case(
            3,
            "the ApplicationSet deleted",
            f"{kubectl_cmd} delete -f {manifest}",
            "no Application on the hub, no configmap1 on any worker, the ApplicationSet gone",
            gone,
        ),
    ]


def play(
    env: Environment,
    running: fleet.Fleet,
    console: Console,
    *,
    timeout: float = CASE_TIMEOUT,
    report: Reporter = stderr_reporter,
) -> None:
    """Start the pipeline on ``running`` and play the three cases; raises ``InfraError`` on failure."""
    pipe = pipeline.start(env, running, report)
    with step(report, "making the local git repository of the apps"):
        repo = gitrepo.demo_apps_repo(env.root / "apps")
    env.set_endpoint("apps-repo", url=repo)
    manifest = env.path("demo") / "applicationset.yaml"
    hub = running.hub.kubeconfig
    apps = [f"{w.name}-configmap1" for w in running.workers]
    view = FleetView(running.hub, running.workers, APPSET, pipeline.INVENTORY_NAMESPACE)
    one, two, three = cases(apps, manifest, hub)
    actions: list[tuple[Case, Callable[[], object]]] = [
        (one, lambda: _apply(hub, manifest, MISSING_REPO)),
        (two, lambda: _apply(hub, manifest, repo)),
        (three, lambda: kubectl.run(hub, "delete", "-f", str(manifest), "--wait=false")),
    ]
    started = time.monotonic()
    try:
        for case, act in actions:
            console.rule(f"case {case.number} of 3: {case.title}")
            console.print(f"[bold]$[/bold] {case.action}", soft_wrap=True)
            act()
            wait_for(case, view.snapshot, env, pipe, console, timeout)
    finally:
        view.close()
    console.rule(f"[green]all three cases passed in {time.monotonic() - started:.0f}s[/green]")


def _apply(hub: Path, manifest: Path, repo: str) -> None:
    manifest.write_text(yaml.safe_dump(application_set(repo), sort_keys=False))
    kubectl.apply_files(hub, manifest, field_manager="fleetplane-demo")


def wait_for(
    case: Case,
    read: Callable[[], Snapshot],
    env: Environment,
    pipe: pipeline.Pipeline,
    console: Console,
    timeout: float,
) -> float:
    """Poll ``read`` (``FleetView.snapshot``) once a second, showing the table live, until ``case``
    passed; returns how long it took. Fails at once if a process of the environment died, and
    after ``timeout`` otherwise."""
    started = time.monotonic()
    spinner = Spinner("dots", text=f"case {case.number}: waiting for {case.expect}")
    with Live(console=console, refresh_per_second=4, transient=True) as live:
        while True:
            snapshot = read()
            elapsed = time.monotonic() - started
            if case.passed(snapshot):
                break
            _check_alive(env, case)
            if elapsed > timeout:
                raise InfraError(
                    f"case {case.number} did not pass within {timeout:.0f}s\n"
                    f"expected: {case.expect}\nlast seen:\n{snapshot.describe()}",
                    fix="read the logs (the controllers' last lines are below): "
                    + ", ".join(f"{k} {v}" for k, v in pipe.logs.items()),
                    log_tail=process.log_tail(pipe.logs.get("controllers", ""), 15),
                )
            spinner.update(text=f"case {case.number}: waiting for {case.expect} ({elapsed:.0f}s)")
            live.update(Group(spinner, render(snapshot)))
            time.sleep(1)
    console.print(render(snapshot))
    console.print(f"[green]✓ case {case.number} passed[/green] in {elapsed:.1f}s: {case.expect}")
    return elapsed


def _check_alive(env: Environment, case: Case) -> None:
    for record in env.dead_processes():
        raise InfraError(
            f"{record.name} died while the demo waited for case {case.number}",
            fix=f"read {record.log}",
            log_tail=process.log_tail(record.log),
        )


def hints(env: Environment, running: fleet.Fleet, console: Console) -> None:
    """What a user can try while the demo holds the fleet (printed by ``fleetplane demo``)."""
    kubectl_bin = paths.bin_dir() / "kubectl"
    manifest = env.root / "demo" / "applicationset.yaml"
    maestro = env.endpoints.get("maestro", {}).get("address", "")
    console.print("the fleet and the pipeline keep running; try:")
    console.print(
        f"  {kubectl_bin} --kubeconfig {running.hub.kubeconfig} apply -f {manifest}", soft_wrap=True
    )
    console.print(
        f"  {kubectl_bin} --kubeconfig {running.hub.kubeconfig} get applications -n argocd", soft_wrap=True
    )
    works = " ".join(pipeline.fleetplane_argv("maestro", "works", "list", "--server", maestro))
    console.print(f"  {works}", soft_wrap=True)
