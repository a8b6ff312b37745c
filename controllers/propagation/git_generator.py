"""The ``git`` generator: parameter sets from a repository's directories or files, with Argo CD's
semantics.

Dispatched to by ``generators.generate_one``. It reads nothing itself: the caller fetched every
repository revision the ApplicationSet names (``referenced``) into ``GeneratorInputs.git`` as
``GitTree`` values, listing directories as Argo CD's repo-server walks a checkout (hidden ones
skipped) and the files each ``files[].path`` pattern matches as ``git ls-files`` matches a pathspec.

- **directories**: every directory matching an include pattern (``path.Match``: ``*`` stops at
  ``/``) and no ``exclude: true`` pattern, in the order of a depth-first walk of sorted names.
- **files**: the files of the include patterns minus those of the exclude patterns, sorted by path;
  each file is YAML or JSON holding a map (one parameter set) or a list of maps (one each).
- Parameters ``path``, ``path.basename``, ``path.basenameNormalized``, ``path[n]`` (plus
  ``path.filename`` and ``path.filenameNormalized`` for files; ``.path.segments`` with goTemplate),
  under ``pathParamPrefix`` when set, then ``values``, rendered with the set's own parameters.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Mapping
from typing import Any

import yaml

from controllers.propagation import inventory, leaf_generators, templating
from controllers.propagation.generation import (
    Generation,
    GeneratorError,
    GeneratorInputs,
    GitTree,
    Params,
    go_json,
    string_map,
)
from controllers.propagation.gotemplate import values as govalues


@dataclasses.dataclass(frozen=True)
class GitRequest:
    """A repository revision an ApplicationSet reads, and the file patterns it asks for."""

    repo_url: str
    revision: str
    patterns: tuple[str, ...] = ()


def revision_of(body: Mapping[str, Any]) -> str:
    """The revision a git generator reads: ``revision``, or the repository's ``HEAD``."""
    revision = body.get("revision")
    return revision if isinstance(revision, str) and revision else "HEAD"


def referenced(generators: Any, found: dict[tuple[str, str], set[str]]) -> None:
    """Adds to ``found`` each (repoURL, revision) the git generators of ``generators`` (nested in
    matrix and merge too) read, with their file patterns. A templated repoURL is left out: it is
    known only while generating, and the generator then says it was not read."""
    for generator in generators if isinstance(generators, list) else []:
        if not isinstance(generator, Mapping):
            continue
        body = generator.get("git")
        if isinstance(body, Mapping) and isinstance(body.get("repoURL"), str):
            url, revision = body["repoURL"], revision_of(body)
            if "{{" not in url + revision:
                patterns = found.setdefault((url, revision), set())
                for item in body.get("files") or []:
                    if isinstance(item, Mapping) and isinstance(item.get("path"), str):
                        patterns.add(item["path"])
        for nested in ("matrix", "merge"):
            if isinstance(generator.get(nested), Mapping):
                referenced(generator[nested].get("generators"), found)


def git_params(
    body: Mapping[str, Any], inputs: GeneratorInputs, mode: templating.Mode, path: str
) -> Generation:
    url = body.get("repoURL")
    if not isinstance(url, str) or not url:
        raise GeneratorError(f"{path}.repoURL", "required: the Git repository to read")
    for field, value in (("repoURL", url), ("revision", revision_of(body))):
        if value.startswith("-"):  # git would read it as an option
            raise GeneratorError(f"{path}.{field}", f"{value!r} must not start with '-'")
    directories, files = body.get("directories") or [], body.get("files") or []
    if bool(directories) == bool(files):
        raise GeneratorError(path, "set exactly one of directories and files")
    prefix = body.get("pathParamPrefix") or ""
    if not isinstance(prefix, str):
        raise GeneratorError(f"{path}.pathParamPrefix", "must be a string")
    values = string_map(body.get("values"), f"{path}.values")
    tree = inputs.git.get((url, revision_of(body)))
    if tree is None:
        raise GeneratorError(
            f"{path}.repoURL",
            f"{url} at {revision_of(body)} was not read; a repoURL or revision templated from a matrix's "
            "first generator is not supported",
        )
    if isinstance(tree, str):
        raise GeneratorError(f"{path}.repoURL", f"cannot read {url} at {revision_of(body)}: {tree}")
    if directories:
        items = _items(directories, f"{path}.directories")
        sets = [_path_params(d, None, prefix, mode) for d in _matching_directories(tree, items)]
    else:
        sets = _file_sets(tree, _items(files, f"{path}.files"), prefix, mode, path)
    for params in sets:
        leaf_generators.add_values(params, values, mode, f"{path}.values")
    return Generation(sets)


def _items(items: Any, where: str) -> list[tuple[str, bool]]:
    if not isinstance(items, list):
        raise GeneratorError(where, "must be a list of {path, exclude}")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping) or not isinstance(item.get("path"), str):
            raise GeneratorError(f"{where}[{i}].path", "required: a path pattern such as apps/*")
        unknown = sorted(set(item) - {"path", "exclude"})
        if unknown:
            raise GeneratorError(f"{where}[{i}].{unknown[0]}", "unknown field; takes path and exclude")
        out.append((item["path"], bool(item.get("exclude"))))
    return out


def _matching_directories(tree: GitTree, items: list[tuple[str, bool]]) -> list[str]:
    chosen = []
    for directory in tree.directories:
        hits = [exclude for pattern, exclude in items if path_match(pattern, directory)]
        if hits and not any(hits):
            chosen.append(directory)
    return chosen


def _file_sets(
    tree: GitTree, items: list[tuple[str, bool]], prefix: str, mode: templating.Mode, path: str
) -> list[Params]:
    contents: dict[str, str] = {}
    for pattern, exclude in items:
        if not exclude:
            contents.update(tree.files.get(pattern, ()))
    for pattern, exclude in items:
        if exclude:
            for name, _ in tree.files.get(pattern, ()):
                contents.pop(name, None)
    sets: list[Params] = []
    for name in sorted(contents):
        for obj in _objects(contents[name], f"{path}: file {name!r}"):
            sets.append(_path_params(posixpath.dirname(name) or ".", name, prefix, mode, obj))
    return sets


def _objects(text: str, where: str) -> list[Mapping[str, Any]]:
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise GeneratorError(where, f"is not YAML or JSON: {exc}") from None
    if loaded is None:
        return [{}]
    if isinstance(loaded, Mapping):
        return [go_json(loaded)]
    if isinstance(loaded, list) and all(isinstance(o, Mapping) for o in loaded):
        return [go_json(o) for o in loaded]
    raise GeneratorError(where, "must hold a map of parameters or a list of maps")


def _path_params(
    directory: str, filename: str | None, prefix: str, mode: templating.Mode, content: Mapping[str, Any] = {}
) -> Params:
    base = posixpath.basename(directory)
    if mode.go_template:
        nested: dict[str, Any] = {
            "path": directory,
            "basename": base,
            "basenameNormalized": inventory.normalize_name(base),
            "segments": directory.split("/"),
        }
        if filename is not None:
            nested["filename"] = posixpath.basename(filename)
            nested["filenameNormalized"] = inventory.normalize_name(posixpath.basename(filename))
        params: Params = dict(content)
        if prefix:
            params[prefix] = {"path": nested}
        else:
            params["path"] = nested
        return params
    params = {k: v for k, v in _flatten(content).items()}
    name = f"{prefix}.path" if prefix else "path"
    params[name] = directory
    params[f"{name}.basename"] = base
    if filename is not None:
        params[f"{name}.filename"] = posixpath.basename(filename)
        params[f"{name}.filenameNormalized"] = inventory.normalize_name(posixpath.basename(filename))
    params[f"{name}.basenameNormalized"] = inventory.normalize_name(base)
    for i, segment in enumerate(directory.split("/")):
        if segment:
            params[f"{name}[{i}]"] = segment
    return params


def _flatten(value: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """A file's content as fasttemplate parameters: ``a.b.c`` keys (list items by index), each leaf
    printed as Go's ``%v`` prints it."""
    flat: dict[str, str] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping) and item:
            flat.update(_flatten(item, f"{name}."))
        elif isinstance(item, list) and item:
            flat.update(_flatten({str(i): v for i, v in enumerate(item)}, f"{name}."))
        else:
            flat[name] = govalues.format_v(item)
    return flat


def path_match(pattern: str, name: str) -> bool:
    """Go's ``path.Match``: ``*`` and ``?`` never match ``/``; ``[...]`` classes; ``\\`` escapes.
    A malformed pattern matches nothing, as Argo CD logs and skips it."""
    try:
        return re.fullmatch(_go_pattern(pattern), name, flags=re.DOTALL) is not None
    except (ValueError, re.error):
        return False


def _go_pattern(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\":
            if i + 1 >= len(pattern):
                raise ValueError("trailing backslash")
            i += 1
            out.append(re.escape(pattern[i]))
        elif c == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1 : i + 2] in ("^", "]") else i + 1)
            if end < 0:
                raise ValueError("unclosed [")
            body = pattern[i + 1 : end]
            negate = body.startswith("^")
            body = body[1:] if negate else body
            escaped = body.replace("\\", "\\\\").replace("[", "\\[")
            out.append(f"[^/{escaped}]" if negate else f"[{escaped}]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)
