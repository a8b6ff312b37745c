"""What a composition renders into: composed resources, checked one rendered document at a time.

``render.render`` hands the text its template wrote to :func:`parse`; every problem is a
:class:`RenderError` naming the rendered document (index and name) and what to write instead.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import yaml

from provisioner import api, identity, permissions
from provisioner import labels as label_rules

Target = Literal["provider", "workload", "hub", "maestro", "identity"]
TARGETS: tuple[str, ...] = get_args(Target)
PROVIDERS = ("local", "aws", "simulated")
MAESTRO_CONSUMER_KIND = "MaestroConsumer"
DOCUMENT_KEYS = ("name", "target", "object", "waitReady")

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SEPARATOR = re.compile(r"^---[ \t]*(#.*)?$")
_NAME_LINE = re.compile(r"""^name:[ \t]*["']?([^"'\s#]+)""", re.MULTILINE)
_JSON_OBJECT_LINE = re.compile(r"^object:[ \t]*(\{.*\})[ \t]*$", re.MULTILINE)

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class RenderError(Exception):
    """A composition that cannot be rendered; reads ``<source>:<line>: <message>`` (no line when the
    problem is in the rendered output rather than at one template line)."""

    def __init__(self, source: str, line: int | None, message: str) -> None:
        super().__init__(f"{source}:{line}: {message}" if line else f"{source}: {message}")
        self.source = source
        self.line = line
        self.message = message


class ReservedLabelError(RenderError):
    """A claim's composite sets inventory labels only the platform sets (see ``labels``)."""

    reason = label_rules.REASON

    def __init__(self, message: str) -> None:
        Exception.__init__(self, message)
        self.source = label_rules.CLAIM_FIELD
        self.line = None
        self.message = message


class ParameterError(RenderError):
    """A parameter the provisioner checks itself (the agent's extra permissions) is malformed."""

    reason = "InvalidParameter"

    def __init__(self, message: str) -> None:
        Exception.__init__(self, message)
        self.source = permissions.FIELD
        self.line = None
        self.message = message


@dataclass(frozen=True)
class ComposedResource:
    """One rendered document: ``index`` is its position, the order resources are applied in."""

    name: str
    target: Target
    object: dict[str, Any] = field(hash=False)
    wait_ready: bool = False
    index: int = 0


def _documents(text: str) -> Iterator[str]:
    chunk: list[str] = []
    for line in text.split("\n"):
        if _SEPARATOR.match(line):
            yield "\n".join(chunk)
            chunk = []
        else:
            chunk.append(line)
    yield "\n".join(chunk)


def parse(text: str, source: str) -> list[ComposedResource]:
    resources: list[ComposedResource] = []
    seen: dict[str, int] = {}
    for chunk in _documents(text):
        index = len(resources)
        doc = _load(chunk, index, source)
        if doc is None:
            continue
        where = _where(index, chunk)
        resource = _resource(doc, index, where, source)
        resources.append(_unique(resource, seen, where, source, "rendered document"))
    _check_provider_first(resources, source)
    return resources


def check(resources: list[ComposedResource], source: str, *, whole: bool = True) -> list[ComposedResource]:
    """The resources a composition function returned, checked as a template's output is (``source``
    names the step) and numbered in their order; ``whole``: they are all a composition makes, so
    its provider resource comes first."""
    out: list[ComposedResource] = []
    seen: dict[str, int] = {}
    for index, resource in enumerate(resources):
        where = f"composed resource {index} ({resource.name!r})"
        doc: dict[str, Any] = {"name": resource.name, "target": resource.target, "object": resource.object}
        if resource.wait_ready:
            doc["waitReady"] = True
        out.append(_unique(_resource(doc, index, where, source), seen, where, source, "composed resource"))
    if whole:
        _check_provider_first(out, source)
    return out


def _unique(
    resource: ComposedResource, seen: dict[str, int], where: str, source: str, noun: str
) -> ComposedResource:
    if resource.name in seen:
        raise RenderError(
            source,
            None,
            f"{where}: name {resource.name!r} is already used by {noun} "
            f"{seen[resource.name]} — give each composed resource its own name",
        )
    seen[resource.name] = resource.index
    return resource


def _load(chunk: str, index: int, source: str) -> Any:
    # An object written with | tojson is parsed as JSON, which it is: PyYAML takes about a second
    # for Argo CD's CRDs, json a few milliseconds. The rest of the document is YAML as usual.
    found = _JSON_OBJECT_LINE.search(chunk)
    obj: Any = None
    if found:
        try:
            obj = _json_object(found.group(1))
        except ValueError:
            found = None
        else:
            chunk = f"{chunk[: found.start()]}object: null{chunk[found.end() :]}"
    try:
        doc = yaml.load(chunk, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise RenderError(source, None, _yaml_problem(exc, chunk, index)) from None
    if found and isinstance(doc, dict):
        doc["object"] = obj
    return doc


#: objects written as JSON this long are parsed once per process and shared by every render
_SHARED_JSON = 4096


def _json_object(text: str) -> Any:
    if len(text) < _SHARED_JSON:
        return json.loads(text)
    return _shared_json(text)


@functools.lru_cache(maxsize=256)
def _shared_json(text: str) -> Any:
    """A large object (Argo CD's CRDs) that every composite's render writes alike, parsed once:
    what it returns is shared, and composed objects are never changed in place."""
    return json.loads(text)


def _where(index: int, chunk: str) -> str:
    found = _NAME_LINE.search(chunk)
    return f"rendered document {index} ({found.group(1)!r})" if found else f"rendered document {index}"


def _yaml_problem(exc: yaml.YAMLError, chunk: str, index: int) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = _where(index, chunk)
    if mark is None:
        return f"{where} is not valid YAML: {problem}"
    lines = chunk.split("\n")
    text = lines[mark.line] if mark.line < len(lines) else ""
    return (
        f"{where} is not valid YAML at its line {mark.line + 1}: {problem}: {text.strip()!r} — "
        "check the indentation and quoting the template writes there (| tojson quotes any value)"
    )


def _resource(doc: Any, index: int, where: str, source: str) -> ComposedResource:
    def fail(message: str) -> RenderError:
        return RenderError(source, None, f"{where}: {message}")

    if not isinstance(doc, dict):
        raise fail(f"is {type(doc).__name__}, not a mapping of {', '.join(DOCUMENT_KEYS)}")
    unknown = sorted(set(doc) - set(DOCUMENT_KEYS))
    if unknown:
        raise fail(
            f"has unknown key {unknown[0]!r} — a composed resource has only {', '.join(DOCUMENT_KEYS)}"
        )
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        raise fail("has no name — give it one (lower case letters, digits, '-' and '.')")
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise fail(f"name {name!r} is not a DNS-1123 name — use lower case letters, digits, '-' and '.'")
    target = doc.get("target")
    if target not in TARGETS:
        raise fail(f"target {target!r} is not one of {', '.join(TARGETS)}")
    wait_ready = doc.get("waitReady", False)
    if not isinstance(wait_ready, bool):
        raise fail(f"waitReady is {wait_ready!r} — write true or false")
    obj = doc.get("object")
    if not isinstance(obj, dict):
        raise fail(f"object is {type(obj).__name__}, not a mapping — give the resource its object")
    problems = _object_problems(target, obj)
    if problems:
        raise fail(problems[0])
    return ComposedResource(name=name, target=target, object=obj, wait_ready=wait_ready, index=index)


def _object_problems(target: str, obj: dict[str, Any]) -> list[str]:
    if target == "provider":
        return provider_problems(obj)
    if target == "maestro":
        if obj.get("kind") != MAESTRO_CONSUMER_KIND:
            return [f"a maestro object is kind: {MAESTRO_CONSUMER_KIND}, not {obj.get('kind')!r}"]
        if not isinstance(obj.get("name"), str) or not obj["name"]:
            return ["a MaestroConsumer needs a name (the cluster's consumer name)"]
        return _string_map_problems(obj.get("labels"), "object.labels")
    if target == "identity":
        return identity.problems(obj)
    problems = []
    for key in ("apiVersion", "kind"):
        if not isinstance(obj.get(key), str) or not obj[key]:
            problems.append(f"object.{key} is missing — a {target} object is a Kubernetes object")
    if not isinstance((obj.get("metadata") or {}).get("name"), str):
        problems.append("object.metadata.name is missing — name the object")
    return problems


def provider_problems(obj: Mapping[str, Any]) -> list[str]:
    if obj.get("apiVersion") != api.API_VERSION or obj.get("kind") != api.CLUSTER_CONFIG_KIND:
        return [
            f"the provider object is {obj.get('apiVersion')}/{obj.get('kind')} — "
            f"it must be apiVersion: {api.API_VERSION}, kind: {api.CLUSTER_CONFIG_KIND}"
        ]
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        return ["object.spec is missing — give the ClusterConfig a spec (provider, version, nodeCount, ...)"]
    problems = []
    if spec.get("provider") not in PROVIDERS:
        problems.append(
            f"object.spec.provider is {spec.get('provider')!r} — use one of {', '.join(PROVIDERS)}"
        )
    count = spec.get("nodeCount", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        problems.append(f"object.spec.nodeCount is {count!r} — use a whole number, 1 or more")
    for key in ("version", "region", "instanceType"):
        if key in spec and not isinstance(spec[key], str | type(None)):
            problems.append(f"object.spec.{key} is {spec[key]!r} — write it as a string (| tojson)")
    for key in ("labels", "tags"):
        problems.extend(_string_map_problems(spec.get(key), f"object.spec.{key}"))
    if spec.get("settings") is not None and not isinstance(spec["settings"], Mapping):
        problems.append("object.spec.settings is not a mapping — write key: value settings")
    return problems


def _string_map_problems(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, Mapping):
        return [f"{where} is not a mapping — write key: value pairs"]
    return [
        f"{where}.{k} is {v!r}, not a string — quote it (| tojson)"
        for k, v in value.items()
        if not isinstance(v, str)
    ]


def _check_provider_first(resources: list[ComposedResource], source: str) -> None:
    providers = [r for r in resources if r.target == "provider"]
    if not providers:
        raise RenderError(
            source,
            None,
            "renders no provider resource — the first document must be the ClusterConfig (target: provider)",
        )
    if resources[0].target != "provider":
        raise RenderError(
            source,
            None,
            f"rendered document 0 ({resources[0].name!r}) has target {resources[0].target} — "
            "the provider's ClusterConfig must come first (the cluster exists before anything goes into it)",
        )
    if len(providers) > 1:
        second = providers[1]
        raise RenderError(
            source,
            None,
            f"rendered document {second.index} ({second.name!r}) is a second provider resource — "
            "a composition makes exactly one cluster",
        )
