"""The demo's journey: the three ApplicationSet lifecycle cases on the local fleet.

``fleetplane demo`` (``fleetplane/local_cli.py``) brings the bootstrap's local stack up (the
platform's processes started by ``localinfra.platform``), then calls ``provision`` (the claims
applied, until their clusters are Ready) and ``play``. For each case ``play`` writes the
ApplicationSet a user would write, applies it with kubectl (or deletes it), and waits - showing
the hub's Applications live (``view``) - until the hub and the workers show what the document
says. Each wait is bounded; a timeout or a process that died is an ``InfraError`` naming what was
expected, what was last seen and where the logs are.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console, Group
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table

from bootstrap.local_components import CLUSTER_LABELS
from controllers import contract
from fleetplane.demo.view import FleetView, Snapshot, render
from localinfra import argocd_ui, kube, kubectl, paths, platform, process
from localinfra.errors import InfraError

APPSET = "configmap1"
MISSING_REPO = "file:///nonexistent/fleetplane-demo/apps.git"
CASE_TIMEOUT = 240.0
PROVISION_TIMEOUT = 420.0


@dataclass(frozen=True)
class Case:
    """One case: what the user does (``action``, shown), then what the demo waits for."""

    number: int
    title: str
    action: str
    expect: str
    passed: Callable[[Snapshot], bool]


def application_set(
    repo: str, *, name: str = APPSET, selector: Mapping[str, str] = CLUSTER_LABELS
) -> dict[str, Any]:
    """The ApplicationSet of the cases: opted in to the pull model, one ``<cluster>-configmap1``
    Application per cluster labelled ``selector`` (``demo=true``), auto-synced from ``repo``."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {
            "name": name,
            "namespace": platform.INVENTORY_NAMESPACE,
            "labels": {contract.PULL_LABEL: contract.PULL_LABEL_VALUE},
        },
        "spec": {
            "generators": [{"clusters": {"selector": {"matchLabels": dict(selector)}}}],
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


@dataclass(frozen=True)
class Step:
    """What the user does to start a case: the command shown, and doing it."""

    shown: str
    run: Callable[[], object]


#: how a stage's cases are started
StepsFor = Callable[["Stage"], list[Step]]


def cases(apps: list[str], shown: Sequence[str]) -> list[Case]:
    """The three cases for the hub Applications ``apps`` (one per worker), started by the commands
    ``shown`` (one per case)."""

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
            shown[0],
            f"{len(apps)} hub Applications with sync Unknown and the workers' error, no configmap1",
            unknown,
        ),
        Case(
            2,
            "the repoURL corrected",
            shown[1],
            f"{len(apps)} hub Applications Synced and Healthy, configmap1 on every worker",
            synced,
        ),
        Case(
            3,
            "the ApplicationSet deleted",
            shown[2],
            "no Application on the hub, no configmap1 on any worker, the ApplicationSet gone",
            gone,
        ),
    ]


@dataclass(frozen=True)
class Stage:
    """Where the cases play: the hub and the workers the ApplicationSet targets, the apps
    repository, a folder for the manifest, the pipeline's logs, and how to find a dead process."""

    hub: kube.Cluster
    workers: list[kube.Cluster]
    repo: str
    folder: Path
    logs: dict[str, Path]
    dead: Callable[[], list[process.ProcessRecord]]


def kubectl_steps(stage: Stage) -> list[Step]:
    """The cases started as a user with ``kubectl`` rights on the hub starts them: the
    ApplicationSet applied, applied again corrected, deleted."""
    manifest = stage.folder / "applicationset.yaml"
    hub = stage.hub.kubeconfig
    kubectl_cmd = f"kubectl --kubeconfig {hub}"
    return [
        Step(
            f"{kubectl_cmd} apply -f {manifest}   (repoURL {MISSING_REPO})",
            lambda: _apply(hub, manifest, MISSING_REPO),
        ),
        Step(
            f"{kubectl_cmd} apply -f {manifest}   (repoURL: the local apps repository)",
            lambda: _apply(hub, manifest, stage.repo),
        ),
        Step(
            f"{kubectl_cmd} delete -f {manifest}",
            lambda: kubectl.run(hub, "delete", "-f", str(manifest), "--wait=false"),
        ),
    ]


def play(
    stage: Stage,
    console: Console,
    *,
    timeout: float = CASE_TIMEOUT,
    steps: StepsFor = kubectl_steps,
) -> None:
    """Play the three cases on ``stage``, each started by one of ``steps``; raises ``InfraError``
    on failure."""
    apps = [f"{w.name}-configmap1" for w in stage.workers]
    view = FleetView(stage.hub, stage.workers, APPSET, platform.INVENTORY_NAMESPACE)
    started_by = steps(stage)
    started = time.monotonic()
    try:
        for case, step in zip(cases(apps, [s.shown for s in started_by]), started_by, strict=True):
            console.rule(f"case {case.number} of 3: {case.title}")
            console.print(f"[bold]$[/bold] {case.action}", soft_wrap=True)
            step.run()
            wait_for(case, view.snapshot, stage, console, timeout)
    finally:
        view.close()
    console.rule(f"[green]all three cases passed in {time.monotonic() - started:.0f}s[/green]")


def _apply(hub: Path, manifest: Path, repo: str) -> None:
    manifest.write_text(yaml.safe_dump(application_set(repo), sort_keys=False))
    kubectl.apply_files(hub, manifest, field_manager="fleetplane-demo")


def wait_for(
    case: Case,
    read: Callable[[], Snapshot],
    stage: Stage,
    console: Console,
    timeout: float,
) -> float:
    """Poll ``read`` (``FleetView.snapshot``) once a second, showing the table live, until ``case``
    passed; returns how long it took. Fails at once if a process of the stage died, and after
    ``timeout`` otherwise."""
    started = time.monotonic()
    spinner = Spinner("dots", text=f"case {case.number}: waiting for {case.expect}")
    with Live(console=console, refresh_per_second=4, transient=True) as live:
        while True:
            snapshot = read()
            elapsed = time.monotonic() - started
            if case.passed(snapshot):
                break
            for record in stage.dead():
                raise InfraError(
                    f"{record.name} died while the demo waited for case {case.number}",
                    fix=f"read {record.log}",
                    log_tail=process.log_tail(record.log),
                )
            if elapsed > timeout:
                raise InfraError(
                    f"case {case.number} did not pass within {timeout:.0f}s\n"
                    f"expected: {case.expect}\nlast seen:\n{snapshot.describe()}",
                    fix="read the logs (the controllers' last lines are below): "
                    + ", ".join(f"{k} {v}" for k, v in stage.logs.items()),
                    log_tail=process.log_tail(stage.logs.get("controllers", ""), 15),
                )
            spinner.update(text=f"case {case.number}: waiting for {case.expect} ({elapsed:.0f}s)")
            live.update(Group(spinner, render(snapshot)))
            time.sleep(1)
    console.print(render(snapshot))
    console.print(f"[green]✓ case {case.number} passed[/green] in {elapsed:.1f}s: {case.expect}")
    return elapsed


def provision(
    claims_file: Path,
    hub: kube.Cluster,
    console: Console,
    dead: Callable[[], list[process.ProcessRecord]],
    *,
    timeout: float = PROVISION_TIMEOUT,
) -> list[str]:
    """``kubectl apply`` the demo's cluster claims and wait, showing them live, until every claim is
    Ready (its cluster up with Argo CD and a Maestro agent); returns the claims' names."""
    command = f"kubectl --kubeconfig {hub.kubeconfig} apply -f {claims_file}"
    console.rule("the teams' cluster claims")
    console.print(f"[bold]$[/bold] {command}", soft_wrap=True)
    kubectl.apply_files(hub.kubeconfig, claims_file, field_manager="fleetplane-demo")
    started = time.monotonic()
    rows: list[ClaimRow] = []
    with Live(console=console, refresh_per_second=4, transient=True) as live:
        while True:
            rows = claim_rows(hub)
            elapsed = time.monotonic() - started
            if rows and all(r.ready == "True" for r in rows):
                break
            for record in dead():
                raise InfraError(
                    f"{record.name} died while claims were provisioned",
                    fix=f"read {record.log}",
                    log_tail=process.log_tail(record.log),
                )
            if elapsed > timeout:
                raise InfraError(
                    f"the claims were not all Ready within {timeout:.0f}s",
                    fix="`kubectl describe clusterclaims -A` and `fleetplane trace` show why",
                    log_tail="\n".join(str(r) for r in rows),
                )
            live.update(
                Group(
                    Spinner("dots", text=f"waiting for every claim to be Ready ({elapsed:.0f}s)"),
                    claims_table(rows),
                )
            )
            time.sleep(2)
    console.print(claims_table(rows))
    console.print(f"[green]✓ {len(rows)} clusters Ready[/green] in {time.monotonic() - started:.1f}s")
    return [r.name for r in rows]


@dataclass(frozen=True)
class ClaimRow:
    name: str
    synced: str
    ready: str
    message: str


def claim_rows(hub: kube.Cluster) -> list[ClaimRow]:
    try:
        listed = json.loads(
            kubectl.run(hub.kubeconfig, "get", "clusterclaims", "-A", "-o", "json", timeout=20)
        )
    except InfraError:
        return []  # the claim kind is served a moment after the provisioner starts
    rows = []
    for item in listed.get("items") or []:
        conditions = {c["type"]: c for c in (item.get("status") or {}).get("conditions") or []}
        ready = conditions.get("Ready", {})
        rows.append(
            ClaimRow(
                item["metadata"]["name"],
                conditions.get("Synced", {}).get("status", "-"),
                ready.get("status", "-"),
                ready.get("message") or ready.get("reason") or "",
            )
        )
    return sorted(rows, key=lambda r: r.name)


def claims_table(rows: list[ClaimRow]) -> Table:
    table = Table("claim", "synced", "ready", "message", title="ClusterClaims (namespace team-a)")
    for r in rows:
        table.add_row(r.name, r.synced, r.ready, r.message[:90])
    return table


def hints(
    console: Console,
    hub: kube.Cluster,
    maestro: str,
    folder: Path,
    tls_dir: str,
    processes: Sequence[process.ProcessRecord] = (),
) -> None:
    """What a user can try while the demo holds the platform (printed by ``fleetplane demo``),
    with where each of ``processes`` serves its Prometheus metrics."""
    kubectl_bin = paths.bin_dir() / "kubectl"
    console.print("the platform and the clusters keep running; try:")
    console.print(
        f"  {kubectl_bin} --kubeconfig {hub.kubeconfig} apply -f {folder / 'applicationset.yaml'}",
        soft_wrap=True,
    )
    console.print(
        f"  {kubectl_bin} --kubeconfig {hub.kubeconfig} get clusterclaims,applications -A", soft_wrap=True
    )
    works = " ".join(
        platform.fleetplane_argv("maestro", "works", "list", "--server", maestro, "--tls-dir", tls_dir)
    )
    console.print(f"  {works}", soft_wrap=True)
    served = sorted((r.name, url) for r in processes if (url := platform.metrics_url(r.argv)) is not None)
    for name, url in served:
        console.print(f"  curl {url}   # metrics of {name}", soft_wrap=True)


def argocd_hints(
    console: Console, url: str, password_command: str, login_command: str, *, ui_built: bool
) -> None:
    """Where the hub's Argo CD answers (its API; its web UI when ``ui_built``, else how to build
    it), and how to log in (the password is never printed)."""
    console.rule("the fleet in Argo CD on the hub")
    console.print(f"Argo CD API: {url}  (user admin; the password: `{password_command}`)", soft_wrap=True)
    if ui_built:
        console.print(f"Argo CD web UI: {url}  (the same user and password)", soft_wrap=True)
    else:
        console.print(
            f"Argo CD web UI: not built; `{argocd_ui.BUILD_COMMAND}` builds it for the next demo",
            soft_wrap=True,
        )
    console.print(f"  {login_command}", soft_wrap=True)
    console.print(
        "  then, with the ApplicationSet applied again, the same `SSL_CERT_FILE=... argocd` with: "
        "app list; app get <name> -o tree; appset get argocd/configmap1",
        soft_wrap=True,
    )
