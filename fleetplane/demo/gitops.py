"""The platform from Git: the platform repository's layout, and the demo's cases played by commits.

The management Argo CD (``localinfra.hub_gitops``) syncs one repository onto the hub
(docs/gitops.md), every manifest in it, in this layout:

- ``platform/<composition>/definition.yaml`` and ``composition.yaml``: the definitions and
  Compositions (a folder of ``compositions/``, whose template the provisioner reads from its own
  copy), applied first (sync wave -1) so the kinds they serve exist before any claim;
- ``teams/<namespace>/namespace.yaml`` and ``teams/<namespace>/<claim>.yaml``: each team's
  namespace and cluster claims;
- ``applicationsets/<name>.yaml``: the ApplicationSets, in the hub's inventory namespace.

``fleetplane demo --gitops`` starts the management Argo CD on the demo's hub with a platform
repository holding the worker-cluster definition and Composition, and plays the three
ApplicationSet cases as commits to ``applicationsets/configmap1.yaml``, each followed by a
refresh (what a push webhook does).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from fleetplane.demo import journey
from localinfra import gitrepo, hub_gitops, kube
from localinfra.environment import Environment
from provisioner import catalog

SYNC_WAVE = "argocd.argoproj.io/sync-wave"
SYNC_OPTIONS = "argocd.argoproj.io/sync-options"
#: the ApplicationSet's file in the platform repository
APPSET_FILE = f"applicationsets/{journey.APPSET}.yaml"
README = """# The platform's configuration

Synced onto the hub by the management Argo CD (Application `platform`, project `platform`):
`platform/` holds the definitions and Compositions, `teams/<namespace>/` each team's namespace and
cluster claims, `applicationsets/` the ApplicationSets. A commit here is a change to the platform.
"""


def _annotated(doc: Mapping[str, Any], annotations: Mapping[str, str]) -> dict[str, Any]:
    meta = dict(doc.get("metadata") or {})
    meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
    return {**doc, "metadata": meta}


def manifest(docs: Iterable[Mapping[str, Any]]) -> str:
    return yaml.safe_dump_all([dict(d) for d in docs], sort_keys=False)


def platform_files(composition: Path) -> dict[str, str]:
    """A composition folder's definition and Composition (``compositions/worker-cluster``, say) as
    the repository holds them, in the sync wave before the claims."""
    out = {}
    for name in ("definition.yaml", "composition.yaml"):
        docs = [d for d in yaml.safe_load_all((composition / name).read_text()) if d]
        out[f"platform/{composition.name}/{name}"] = manifest(_annotated(d, {SYNC_WAVE: "-1"}) for d in docs)
    return out


def team_files(namespace: str, claims: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """A team's namespace and its claims. The namespace is never pruned (removing it from Git
    would take every claim in it along); a claim skips the dry run while its kind is not served
    yet (its definition is in the same sync)."""
    ns = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": namespace, "annotations": {SYNC_OPTIONS: "Prune=false"}},
    }
    files = {f"teams/{namespace}/namespace.yaml": manifest([ns])}
    for claim in claims:
        name = claim["metadata"]["name"]
        marked = _annotated(claim, {SYNC_OPTIONS: "SkipDryRunOnMissingResource=true"})
        files[claim_file(namespace, name)] = manifest([marked])
    return files


def claim_file(namespace: str, name: str) -> str:
    return f"teams/{namespace}/{name}.yaml"


def commit(
    hub: kube.Cluster, repo: Path, files: Mapping[str, str], message: str, *, remove: Sequence[str] = ()
) -> str:
    """Commit to the platform repository and have the management Application read it at once."""
    revision = gitrepo.commit(repo, files, message, remove=remove)
    hub_gitops.refresh(hub)
    return revision


def start(
    env: Environment, hub: kube.Cluster, repo: Path, *, seed: Mapping[str, str] | None = None
) -> hub_gitops.HubGitOps:
    """The management Argo CD on ``hub`` syncing ``repo``, created when new with a README and
    ``seed`` (default: the worker-cluster definition and Composition the hub already serves).

    The repository never goes empty: Argo CD's automated sync refuses to prune every resource of
    an Application (a wrong path must not delete every cluster), so the definitions stay when the
    last claim or ApplicationSet goes."""
    if not (repo / ".git").exists():
        files = platform_files(catalog.COMPOSITIONS_DIR / "worker-cluster") if seed is None else seed
        gitrepo.commit(repo, {"README.md": README, **files}, "the platform repository")
    url = gitrepo.url(repo)
    running = hub_gitops.start(env, hub, [url])
    hub_gitops.create_application(hub, hub_gitops.application(url))
    return running


def demo_steps(repo: Path) -> journey.StepsFor:
    """The demo's cases started by commits to ``repo``: the ApplicationSet added, corrected, removed."""

    def steps(stage: journey.Stage) -> list[journey.Step]:
        git = f"git -C {repo}"

        def put(url: str, message: str) -> journey.Step:
            return journey.Step(
                f"{git} commit -m {message!r} {APPSET_FILE}   (repoURL {url})",
                lambda: commit(
                    stage.hub, repo, {APPSET_FILE: manifest([journey.application_set(url)])}, message
                ),
            )

        removed = "remove the configmap1 ApplicationSet"
        return [
            put(journey.MISSING_REPO, "add the configmap1 ApplicationSet"),
            put(stage.repo, "configmap1: the right repoURL"),
            journey.Step(
                f"{git} rm {APPSET_FILE} && {git} commit -m {removed!r}",
                lambda: commit(stage.hub, repo, {}, removed, remove=[APPSET_FILE]),
            ),
        ]

    return steps


def announce(console: Console, repo: Path) -> None:
    console.rule("the platform from Git: a management Argo CD on the hub")
    console.print(
        f"Application [bold]{hub_gitops.APPLICATION}[/bold] (project {hub_gitops.PROJECT}) syncs {repo} "
        "onto the hub; the cases below are commits to it",
        soft_wrap=True,
    )
