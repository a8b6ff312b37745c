"""Reads the git repositories ApplicationSets' ``git`` generators name, for ``GeneratorInputs.git``.

Called by the propagation controller before it generates. Each repository has a local clone in
the cache folder; a revision is fetched shallowly (``--depth 1``) and checked out, then read as
Argo CD's repo-server reads it: directories by walking the checkout (hidden ones skipped), files
with ``git ls-files`` on each pattern. What was read is kept for ``poll_seconds``: Argo CD's
ApplicationSet controller reads its repositories again every 3 minutes by default, and so does
this. git runs as a subprocess, never on the event loop; one repository is read at a time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import time
from collections.abc import Sequence
from pathlib import Path

from controllers.propagation.generation import GitTree
from controllers.propagation.git_generator import GitRequest

DEFAULT_POLL_SECONDS = 180.0
#: git must never wait for a password or a host key on a terminal it does not have, and may use
#: only the transports a repoURL names in Argo CD (never ``ext::``, which runs a command)
_GIT_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "true",
    "LC_ALL": "C",
    "GIT_ALLOW_PROTOCOL": "https:http:ssh:git:file",
}


class GitError(RuntimeError):
    """A git command failed; the message is git's own."""


@dataclasses.dataclass
class _Entry:
    tree: GitTree | str
    read_at: float


class GitReader:
    """Repository revisions, fetched on demand and cached for ``poll_seconds``."""

    def __init__(
        self, cache_dir: Path, *, poll_seconds: float = DEFAULT_POLL_SECONDS, timeout: float = 120
    ) -> None:
        self.cache_dir = cache_dir
        self.poll_seconds = poll_seconds
        self.timeout = timeout
        self._entries: dict[tuple[str, str, tuple[str, ...]], _Entry] = {}
        self._lock = asyncio.Lock()

    async def read(self, requests: Sequence[GitRequest]) -> dict[tuple[str, str], GitTree | str]:
        """Each request's tree, or why it could not be read (a message, never an exception)."""
        return {(r.repo_url, r.revision): await self.tree(r) for r in requests}

    async def tree(self, request: GitRequest) -> GitTree | str:
        key = (request.repo_url, request.revision, request.patterns)
        entry = self._entries.get(key)
        if entry is not None and time.monotonic() - entry.read_at < self.poll_seconds:
            return entry.tree
        async with self._lock:
            try:
                tree: GitTree | str = await self._read(request)
            except (TimeoutError, GitError, OSError) as exc:
                tree = str(exc) or type(exc).__name__
            self._entries[key] = _Entry(tree, time.monotonic())
            return tree

    async def _read(self, request: GitRequest) -> GitTree:
        if request.repo_url.startswith("-") or request.revision.startswith("-"):
            raise GitError(f"refusing {request.repo_url} at {request.revision}: must not start with '-'")
        clone = self.cache_dir / hashlib.sha256(request.repo_url.encode()).hexdigest()[:16]
        if not (clone / ".git").exists():
            clone.mkdir(parents=True, exist_ok=True)
            await self._git(clone, "init", "-q")
            await self._git(clone, "remote", "add", "origin", request.repo_url)
        await self._git(clone, "fetch", "-q", "--depth", "1", "--no-tags", "origin", request.revision)
        await self._git(clone, "checkout", "-q", "--force", "--detach", "FETCH_HEAD")
        await self._git(clone, "clean", "-q", "-ffdx")
        commit = (await self._git(clone, "rev-parse", "HEAD")).strip()
        files: dict[str, tuple[tuple[str, str], ...]] = {}
        for pattern in request.patterns:
            listed = await self._git(clone, "ls-files", "--full-name", "-z", "--", pattern)
            names = [n for n in listed.split("\0") if n]
            files[pattern] = tuple(await asyncio.to_thread(_read_texts, clone, names))
        directories = await asyncio.to_thread(walk_directories, clone)
        return GitTree(commit, tuple(directories), files)

    async def _git(self, cwd: Path, *args: str) -> str:
        try:
            proc = await asyncio.create_subprocess_exec(
                "git",
                *args,
                cwd=cwd,
                env={**os.environ, **_GIT_ENV},
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError:
            raise GitError(
                "git is not installed where the controllers run; install it to use git generators"
            ) from None
        try:
            async with asyncio.timeout(self.timeout):
                out, err = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise GitError(f"git {args[0]} took longer than {self.timeout:.0f}s") from None
        if proc.returncode != 0:
            raise GitError(f"git {args[0]}: {err.decode(errors='replace').strip()}")
        return out.decode(errors="replace")


def _read_texts(root: Path, names: list[str]) -> list[tuple[str, str]]:
    return [(n, (root / n).read_text(errors="replace")) for n in names]


def walk_directories(root: Path) -> list[str]:
    """The checkout's directories relative to ``root``, as Go's ``filepath.WalkDir`` visits them
    (sorted names, depth first), without hidden ones and what they hold."""
    found: list[str] = []

    def walk(folder: Path, prefix: str) -> None:
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if not entry.is_dir(follow_symlinks=False) or entry.name.startswith("."):
                continue
            relative = f"{prefix}{entry.name}"
            found.append(relative)
            walk(Path(entry.path), f"{relative}/")

    walk(root, "")
    return found
