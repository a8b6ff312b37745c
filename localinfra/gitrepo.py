"""Local git repositories for the demo and the tests, served to Argo CD over ``file://``."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from localinfra.errors import InfraError

_IDENTITY = (
    "-c",
    "user.name=fleetplane",
    "-c",
    "user.email=fleetplane@localhost",
    "-c",
    "init.defaultBranch=main",
)


def _git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", *_IDENTITY, *args], cwd=repo, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise InfraError(
            f"git {' '.join(args)} failed in {repo}: {out.stderr.strip()}", fix="is git installed?"
        )
    return out.stdout.strip()


def commit(repo: Path, files: Mapping[str, str], message: str, *, remove: Sequence[str] = ()) -> str:
    """Write ``files`` (path -> text) into the repository, delete the paths ``remove``, and commit;
    returns the revision."""
    if not (repo / ".git").exists():
        repo.mkdir(parents=True, exist_ok=True)
        _git(repo, "init", "-q")
    for rel, text in files.items():
        target = repo / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    for rel in remove:
        (repo / rel).unlink(missing_ok=True)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return _git(repo, "rev-parse", "HEAD")


def url(repo: Path) -> str:
    return f"file://{repo.resolve()}"


CONFIGMAP1 = """apiVersion: v1
kind: ConfigMap
metadata:
  name: configmap1
data:
  greeting: hello from fleetplane
"""


#: What every cluster of the demo syncs from its claim (the composition's ``worker-apps``):
#: something other than ``configmap1``, which only the ApplicationSet's cases bring.
PLATFORM_APPS = """apiVersion: v1
kind: ConfigMap
metadata:
  name: fleetplane-platform
data:
  owner: platform team
"""


def demo_apps_repo(repo: Path) -> str:
    """The apps repository of the demo: the lifecycle cases' ``configmap1`` under
    ``apps/configmap1`` and the clusters' own ``apps/platform``."""
    files = {"apps/configmap1/configmap.yaml": CONFIGMAP1, "apps/platform/configmap.yaml": PLATFORM_APPS}
    commit(repo, files, "configmap1 and the platform apps")
    return url(repo)


def tag(repo: Path, name: str) -> None:
    """Tag the current commit (lightweight)."""
    _git(repo, "tag", name)
