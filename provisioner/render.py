"""Rendering a composition: a Jinja template in, the ordered list of composed resources out.

The operator renders a composite's revision on every reconcile, and ``fleetplane render`` does the
same offline; both call :func:`composite_values` then :func:`render`. The template runs in Jinja's
immutable sandbox with strict undefined variables: it can read its values but not change them (the
platform's Argo CD objects are shared between renders), and a missing value is an error naming the
variable, the template line and where to set it — never an empty string in a cluster's spec.

The template writes a YAML stream; each document is one composed resource::

    name: argocd-namespace        # unique in the composition, DNS-1123
    target: workload              # provider | workload | hub | maestro
    waitReady: false              # optional: hold the next resources until this one is ready
    object: {apiVersion: v1, kind: Namespace, metadata: {name: argocd}}

Exactly one ``provider`` resource comes first: the ``ClusterConfig`` that :func:`cluster_spec` turns
into the provider's :class:`~provisioner.providers.base.ClusterSpec`.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import re
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import jinja2
import yaml
from jinja2 import sandbox

from provisioner import api
from provisioner.providers.base import ClusterSpec

Target = Literal["provider", "workload", "hub", "maestro"]
TARGETS: tuple[str, ...] = get_args(Target)
PROVIDERS = ("local", "aws")
MAESTRO_CONSUMER_KIND = "MaestroConsumer"
DOCUMENT_KEYS = ("name", "target", "object", "waitReady")
# The variables composite_values() gives every template.
VARIABLES = ("composite", "name", "claim", "parameters", "labels", "platform")

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SEPARATOR = re.compile(r"^---[ \t]*(#.*)?$")
_NAME_LINE = re.compile(r"""^name:[ \t]*["']?([^"'\s#]+)""", re.MULTILINE)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
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


@dataclass(frozen=True)
class ComposedResource:
    """One rendered document: ``index`` is its position, the order resources are applied in."""

    name: str
    target: Target
    object: dict[str, Any] = field(hash=False)
    wait_ready: bool = False
    index: int = 0


def render(template_text: str, *, source: str, values: Mapping[str, Any]) -> list[ComposedResource]:
    """Render ``template_text`` (named ``source`` in errors) with ``values`` into composed resources."""
    try:
        template = _compiled(source, template_text)
    except jinja2.TemplateSyntaxError as exc:
        raise RenderError(source, exc.lineno, f"template syntax error: {exc.message}") from None
    try:
        text = template.render({k: _trace(v, k) for k, v in values.items()})
    except jinja2.UndefinedError as exc:
        raise RenderError(source, _template_line(exc, source), str(exc)) from None
    except Exception as exc:  # the template is user code: any failure in it is a render error at its line
        raise RenderError(source, _template_line(exc, source), f"{type(exc).__name__}: {exc}") from None
    return _resources(text, source)


def composite_values(
    composite: Mapping[str, Any],
    claim: Mapping[str, Any] | None,
    defaults: Mapping[str, Any] | None,
    platform: Mapping[str, Any],
) -> dict[str, Any]:
    """The template's variables: ``composite`` (the object), ``name`` (its name), ``claim``
    (``{name, namespace}``, from ``claim`` or the composite's ``claimRef``; ``None`` for a composite
    made directly), ``parameters`` (the Composition's ``defaults`` overlaid with the composite's
    ``spec.parameters``), ``labels`` (``parameters.labels`` or ``{}``) and ``platform`` as given:
    ``{hub: {name, server, inventoryNamespace}, maestro: {grpc, kafka, topicPrefix},
    argocd: {version, install: [objects of Argo CD's install.yaml]}}``."""
    metadata = composite.get("metadata") or {}
    spec = composite.get("spec") or {}
    parameters = deep_merge(defaults or {}, spec.get("parameters") or {})
    claim_info: dict[str, str] | None = None
    if claim is not None:
        claim_meta = claim.get("metadata") or {}
        claim_info = {
            "name": str(claim_meta.get("name", "")),
            "namespace": str(claim_meta.get("namespace", "")),
        }
    elif (spec.get("claimRef") or {}).get("name"):
        claim_info = {
            "name": str(spec["claimRef"]["name"]),
            "namespace": str(spec["claimRef"].get("namespace", "")),
        }
    return {
        "composite": copy.deepcopy(dict(composite)),
        "name": str(metadata.get("name", "")),
        "claim": claim_info,
        "parameters": parameters,
        "labels": dict(parameters.get("labels") or {}),
        "platform": platform,
    }


def platform_values(
    *,
    hub_name: str,
    hub_server: str,
    inventory_namespace: str,
    maestro_grpc: str,
    kafka: str,
    topic_prefix: str,
    argocd_version: str,
    argocd_install: list[dict[str, Any]],
) -> dict[str, Any]:
    """The ``platform`` variable, in the shape templates read it."""
    return {
        "hub": {"name": hub_name, "server": hub_server, "inventoryNamespace": inventory_namespace},
        "maestro": {"grpc": maestro_grpc, "kafka": kafka, "topicPrefix": topic_prefix},
        "argocd": {"version": argocd_version, "install": argocd_install},
    }


def cluster_spec(resource: ComposedResource, name: str) -> ClusterSpec:
    """The provider resource's ``ClusterConfig`` as the provider's :class:`ClusterSpec` for cluster
    ``name``."""
    problems = _provider_problems(resource.object)
    if problems:
        raise RenderError(f"composed resource {resource.name!r}", None, problems[0])
    spec = resource.object["spec"]
    return ClusterSpec(
        name=name,
        version=str(spec.get("version") or ""),
        region=str(spec.get("region") or ""),
        node_count=int(spec.get("nodeCount") or 1),
        instance_type=str(spec.get("instanceType") or ""),
        labels=dict(spec.get("labels") or {}),
        tags=dict(spec.get("tags") or {}),
        settings=copy.deepcopy(dict(spec.get("settings") or {})),
    )


def provider_name(resource: ComposedResource) -> str:
    """Which provider (``local`` or ``aws``) the provider resource asks for."""
    return str((resource.object.get("spec") or {}).get("provider", ""))


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """A new mapping: ``override`` over ``base``, mappings merged key by key, anything else replaced."""
    out = {k: copy.deepcopy(v) for k, v in base.items()}
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# ---- the Jinja environment


class _Traced(dict[str, Any]):
    """A mapping that remembers the expression it was reached by, for undefined-variable messages."""

    __slots__ = ("_fp_path",)
    _fp_path: str


class _TracedList(list[Any]):
    __slots__ = ("_fp_path",)
    _fp_path: str

    def __iter__(self) -> Iterator[Any]:
        for i, item in enumerate(list.__iter__(self)):
            yield _trace(item, f"{self._fp_path}[{i}]")


def _trace(value: Any, path: str) -> Any:
    if isinstance(value, Mapping) and not isinstance(value, _Traced):
        traced: Any = _Traced(value)
    elif isinstance(value, list) and not isinstance(value, _TracedList):
        traced = _TracedList(value)
    else:
        return value
    traced._fp_path = path
    return traced


def _child_path(parent: Any, key: Any) -> str | None:
    path = getattr(parent, "_fp_path", None)
    if path is None:
        return None
    return f"{path}.{key}" if isinstance(key, str) and _IDENTIFIER.match(key) else f"{path}[{key!r}]"


class _Undefined(jinja2.StrictUndefined):
    """Strict undefined whose message names the whole expression and where to set the value."""

    @property
    def _undefined_message(self) -> str:
        if self._undefined_hint:
            return self._undefined_hint
        name = self._undefined_name
        if self._undefined_obj is jinja2.utils.missing:
            return f"{name!r} is undefined — the template's variables are {', '.join(VARIABLES)}"
        if self._undefined_obj is None:
            return (
                f"None has no attribute {name!r} — guard the expression with {{% if ... %}} "
                "(claim is None for a composite made without a claim)"
            )
        path = getattr(self._undefined_obj, "_fp_path", None)
        if path is None:
            return f"{super()._undefined_message} — check the name, or give it a default with | default(...)"
        what = f"attribute {name!r}" if isinstance(name, str) else f"element {name!r}"
        return f"{path!r} has no {what} — {_fix(path, name)}"


def _fix(path: str, name: Any) -> str:
    full = f"{path}.{name}" if isinstance(name, str) else f"{path}[{name!r}]"
    root = re.split(r"[.\[]", path, maxsplit=1)[0]
    if root == "parameters":
        return f"set spec.{full} on the claim or a default in the Composition"
    if root == "labels":
        return f"set spec.parameters.{full} on the claim, or write labels.get({name!r}) where it is optional"
    if root == "platform" and "[" in path:
        return f"the object has no such field: write .get({name!r}) where it is optional"
    if root == "platform":
        return (
            f"the provisioner was given no {full}: set it in the platform settings "
            "(see fleetplane render --help)"
        )
    if root == "composite":
        return f"set {full.removeprefix('composite.')} on the composite, or guard it with {{% if ... %}}"
    if root == "claim":
        return "the claim offers only name and namespace"
    return "check the name, or give it a default with | default(...)"


class _Environment(sandbox.ImmutableSandboxedEnvironment):
    def getattr(self, obj: Any, attribute: str) -> Any:
        value = super().getattr(obj, attribute)
        path = _child_path(obj, attribute)
        return value if path is None or isinstance(value, jinja2.Undefined) else _trace(value, path)

    def getitem(self, obj: Any, argument: Any) -> Any:
        value = super().getitem(obj, argument)
        path = _child_path(obj, argument)
        return value if path is None or isinstance(value, jinja2.Undefined) else _trace(value, path)


def _environment(source: str, text: str) -> _Environment:
    env = _Environment(
        loader=jinja2.FunctionLoader(lambda name: (text, source, lambda: True) if name == source else None),
        undefined=_Undefined,
        # Block tags on lines of their own leave no blank lines or stray indentation in the YAML.
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters.update({"toyaml": toyaml, "tojson": tojson, "b64enc": b64enc, "merge": merge})
    return env


@functools.lru_cache(maxsize=64)
def _compiled(source: str, text: str) -> jinja2.Template:
    # The operator renders the same few revisions on every reconcile: compile each once.
    return _environment(source, text).get_template(source)


def _template_line(exc: BaseException, source: str) -> int | None:
    """The innermost template line in the traceback (Jinja rewrites its frames to the template's lines)."""
    line = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == source:
            line = lineno
    return line


# ---- filters


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    pass


_Dumper.add_representer(_Traced, yaml.representer.SafeRepresenter.represent_dict)
_Dumper.add_representer(_TracedList, yaml.representer.SafeRepresenter.represent_list)


def _plain(value: Any) -> Any:
    if isinstance(value, jinja2.Undefined):
        str(value)  # a strict undefined raises here, with its message
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def toyaml(value: Any, indent: int = 0) -> str:
    """Block YAML. With ``indent``, every line is indented by that much and the text starts on a new
    line (Helm's ``toYaml | nindent``), so ``key: {{ x | toyaml(2) }}`` nests ``x`` under ``key``."""
    text = yaml.dump(
        _plain(value),
        Dumper=_Dumper,
        default_flow_style=False,
        sort_keys=False,
        allow_unicode=True,
        width=2**16,
    )
    text = text.removesuffix("...\n").rstrip("\n")
    if not indent:
        return text
    pad = " " * indent
    return "\n" + "\n".join(pad + line if line else line for line in text.split("\n"))


def tojson(value: Any) -> str:
    """One line of JSON, which is also YAML: the safe way to write any string or object."""
    return json.dumps(value, ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, jinja2.Undefined):
        str(value)  # a strict undefined raises here, with its message
    raise TypeError(f"{type(value).__name__} cannot be written as JSON")


def b64enc(value: Any) -> str:
    """Base64 of a string's UTF-8 bytes, for a Secret's ``data``."""
    raw = value if isinstance(value, bytes) else str(value).encode()
    return base64.b64encode(raw).decode("ascii")


def merge(base: Any, patch: Any) -> dict[str, Any]:
    """A copy of ``base`` with ``patch`` deep-merged over it:
    ``obj | merge({"metadata": {"namespace": ns}})``."""
    return deep_merge(_plain(base), _plain(patch))


# ---- the rendered stream


def _documents(text: str) -> Iterator[str]:
    chunk: list[str] = []
    for line in text.split("\n"):
        if _SEPARATOR.match(line):
            yield "\n".join(chunk)
            chunk = []
        else:
            chunk.append(line)
    yield "\n".join(chunk)


def _resources(text: str, source: str) -> list[ComposedResource]:
    resources: list[ComposedResource] = []
    seen: dict[str, int] = {}
    for chunk in _documents(text):
        index = len(resources)
        doc = _load(chunk, index, source)
        if doc is None:
            continue
        where = _where(index, chunk)
        resource = _resource(doc, index, where, source)
        if resource.name in seen:
            raise RenderError(
                source,
                None,
                f"{where}: name {resource.name!r} is already used by rendered document "
                f"{seen[resource.name]} — give each composed resource its own name",
            )
        seen[resource.name] = index
        resources.append(resource)
    _check_provider_first(resources, source)
    return resources


def _load(chunk: str, index: int, source: str) -> Any:
    # An object written with | tojson is parsed as JSON, which it is: PyYAML takes about a second
    # for Argo CD's CRDs, json a few milliseconds. The rest of the document is YAML as usual.
    found = _JSON_OBJECT_LINE.search(chunk)
    obj: Any = None
    if found:
        try:
            obj = json.loads(found.group(1))
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
        return _provider_problems(obj)
    if target == "maestro":
        if obj.get("kind") != MAESTRO_CONSUMER_KIND:
            return [f"a maestro object is kind: {MAESTRO_CONSUMER_KIND}, not {obj.get('kind')!r}"]
        if not isinstance(obj.get("name"), str) or not obj["name"]:
            return ["a MaestroConsumer needs a name (the cluster's consumer name)"]
        return _string_map_problems(obj.get("labels"), "object.labels")
    problems = []
    for key in ("apiVersion", "kind"):
        if not isinstance(obj.get(key), str) or not obj[key]:
            problems.append(f"object.{key} is missing — a {target} object is a Kubernetes object")
    if not isinstance((obj.get("metadata") or {}).get("name"), str):
        problems.append("object.metadata.name is missing — name the object")
    return problems


def _provider_problems(obj: Mapping[str, Any]) -> list[str]:
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
