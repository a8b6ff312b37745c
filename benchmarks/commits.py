"""``fleetplane bench commits``: ``bench fleet`` run for two commits of this repository back to
back, and the ratio of their figures (after / before).

Each commit is checked out into a temporary git worktree (detached, nothing of the current checkout
changes) and ``fleetplane bench fleet ... --json`` runs from it with this interpreter and the
worktree first on ``PYTHONPATH``: the benchmark, the controllers and the Maestro server it starts
are that commit's code, the components (``~/.cache/fleetplane``) and the Python packages are the
same for both. A commit whose dependencies this environment lacks fails with the import error.
With ``rounds`` > 1 the commits alternate (before, after, before, ...), so that a machine that
slows down for a while weighs on both alike.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import compare
from benchmarks.progress import Progress
from localinfra import platform

#: the figures compared, higher is better (Applications per second of each phase)
RATES = ("create_per_s", "update_per_s", "delete_per_s")


@dataclasses.dataclass(frozen=True)
class Commit:
    label: str
    revision: str
    sha: str
    tree: Path


def resolve(repo: Path, revision: str) -> str:
    """The full commit id of ``revision``; a clear error when the repository has no such commit."""
    done = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise ValueError(f"{revision!r} is not a commit of {repo}: give a commit id, tag or branch")
    return done.stdout.strip()


def run(
    repo: Path,
    revisions: tuple[str, str],
    fleet_args: Sequence[str],
    *,
    rounds: int,
    progress: Progress,
    keep: bool = False,
) -> dict[str, Any]:
    """``bench fleet`` with ``fleet_args`` for the ``before`` and ``after`` revisions, ``rounds``
    times each, alternating; each commit's runs and the ratios after / before."""
    shas = [resolve(repo, r) for r in revisions]
    scratch = Path(tempfile.mkdtemp(prefix="fleetplane-bench-commits-"))
    commits = [
        Commit(label, revision, sha, scratch / label)
        for label, revision, sha in zip(("before", "after"), revisions, shas, strict=True)
    ]
    runs: dict[str, list[dict[str, Any]]] = {c.label: [] for c in commits}
    try:
        for commit in commits:
            progress(f"[bench] {commit.label}: {commit.revision} ({commit.sha[:12]}) into {commit.tree}")
            _git(repo, "worktree", "add", "--detach", str(commit.tree), commit.sha)
        for round_ in range(1, rounds + 1):
            for commit in commits:
                progress(
                    f"[bench] round {round_} of {rounds}: bench fleet at {commit.label} ({commit.sha[:12]})"
                )
                runs[commit.label].append(_fleet(commit.tree, fleet_args))
    finally:
        if not keep:
            for commit in commits:
                if commit.tree.exists():
                    _git(repo, "worktree", "remove", "--force", str(commit.tree))
            _git(repo, "worktree", "prune")
            shutil.rmtree(scratch, ignore_errors=True)
    out = compare.price(runs["after"], runs["before"], RATES, ("after", "before"))
    out["commits"] = {c.label: {"revision": c.revision, "sha": c.sha} for c in commits}
    out["cpu_ms_per_application"] = _cpu_ratios(runs["after"], runs["before"])
    return out


def _fleet(tree: Path, fleet_args: Sequence[str]) -> dict[str, Any]:
    """One ``bench fleet --json`` run of the code in ``tree``; its progress goes to this stderr."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    argv = platform.fleetplane_argv("bench", "fleet", *fleet_args, "--json")
    done = subprocess.run(argv, cwd=tree, env=env, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench fleet in {tree} exited with {done.returncode} (its output is above)")
    figures: dict[str, Any] = json.loads(done.stdout)
    return figures


def _cpu_ratios(after: list[dict[str, Any]], before: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per phase and process: the mean CPU ms per Application of each commit and after / before."""
    out: dict[str, dict[str, Any]] = {}
    for phase in ("create", "update", "delete"):
        means = [_mean_cpu(runs, phase) for runs in (after, before)]
        shared = sorted(set(means[0]) & set(means[1]))
        if shared:
            out[phase] = {
                name: {
                    "after": means[0][name],
                    "before": means[1][name],
                    "ratio": round(means[0][name] / means[1][name], 3) if means[1][name] else None,
                }
                for name in shared
            }
    return out


def _mean_cpu(runs: list[dict[str, Any]], phase: str) -> dict[str, float]:
    tables = [(r.get("cpu_ms_per_application") or {}).get(phase) for r in runs]
    if not runs or any(t is None for t in tables):
        return {}
    names = set.intersection(*(set(t) for t in tables if t is not None))
    return {n: round(sum(t[n] for t in tables if t is not None) / len(tables), 2) for n in names}


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)
